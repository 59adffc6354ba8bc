"""build_config: precedence flags > FASTCOMM_* env > TOML > defaults, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastcomm.config import ECHO_MAX_MESSAGE_SIZE, Config, Namespace, build_config
from fastcomm.errors import ConfigError


def write_toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "fastcomm.toml"
    path.write_text(text)
    return str(path)


def test_defaults_when_no_source_is_given() -> None:
    assert build_config(env={}) == Config()


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTCOMM_PORT", "9100")
    assert build_config().port == 9100


def test_precedence_flags_over_env_over_toml_over_defaults(tmp_path: Path) -> None:
    toml = write_toml(
        tmp_path, 'port = 1111\nhost = "toml-host"\npath = "/toml"\nheartbeat = 1.5\n'
    )
    env = {"FASTCOMM_PORT": "2222", "FASTCOMM_HOST": "env-host"}
    config = build_config({"port": 3333}, env=env, config_file=toml)
    assert config.port == 3333  # flag beats env and file
    assert config.host == "env-host"  # env beats file
    assert config.path == "/toml"  # file beats default
    assert config.heartbeat == 1.5
    assert config.drain_timeout == Config().drain_timeout  # nothing set it


def test_none_overrides_are_unset_flags(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "port = 1111\n")
    config = build_config({"port": None, "host": None}, env={}, config_file=toml)
    assert config.port == 1111
    assert config.host == Config().host


def test_toml_fastcomm_table_is_accepted(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "[fastcomm]\nmax_connections = 5\n")
    assert build_config(env={}, config_file=toml).max_connections == 5


def test_config_file_from_env(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "rate_burst = 7\n")
    assert build_config(env={"FASTCOMM_CONFIG": toml}).rate_burst == 7


def test_explicit_config_file_beats_env_config_file(tmp_path: Path) -> None:
    first = write_toml(tmp_path, "rate_burst = 7\n")
    second = tmp_path / "other.toml"
    second.write_text("rate_burst = 9\n")
    assert build_config(env={"FASTCOMM_CONFIG": first}, config_file=str(second)).rate_burst == 9


def test_toml_namespaces(tmp_path: Path) -> None:
    toml = write_toml(
        tmp_path, '[[namespaces]]\npattern = "chat:*"\nhistory_size = 10\npresence = false\n'
    )
    config = build_config(env={}, config_file=toml)
    assert config.namespaces == (Namespace(pattern="chat:*", history_size=10, presence=False),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a.example", ("a.example",)), (" a , b ,, ", ("a", "b")), ("", ())],
)
def test_env_tuple_is_comma_separated(text: str, expected: tuple[str, ...]) -> None:
    assert build_config(env={"FASTCOMM_ALLOWED_ORIGINS": text}).allowed_origins == expected


def test_toml_and_flag_lists_become_tuples(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'allowed_origins = ["https://a", "https://b"]\n')
    assert build_config(env={}, config_file=toml).allowed_origins == ("https://a", "https://b")
    flags = build_config({"allowed_origins": ["https://c"]}, env={})
    assert flags.allowed_origins == ("https://c",)


@pytest.mark.parametrize("text", ["1", "true", "YES", " on "])
def test_env_true_values(text: str) -> None:
    assert build_config(env={"FASTCOMM_ECHO": text}).echo is True


@pytest.mark.parametrize("text", ["0", "false", "No", "off"])
def test_env_false_values(text: str) -> None:
    assert build_config(env={"FASTCOMM_PRESENCE": text}).presence is False


def test_env_numbers_are_parsed() -> None:
    config = build_config(env={"FASTCOMM_RATE_LIMIT": "12.5", "FASTCOMM_MAX_CONNECTIONS": "1_000"})
    assert config.rate_limit == 12.5
    assert config.max_connections == 1000


def test_env_float_field_accepts_an_integer() -> None:
    assert build_config(env={"FASTCOMM_HEARTBEAT": "3"}).heartbeat == 3.0


@pytest.mark.parametrize(
    ("env", "phrase"),
    [
        ({"FASTCOMM_ECHO": "maybe"}, "FASTCOMM_ECHO must be a boolean"),
        ({"FASTCOMM_PORT": "abc"}, "FASTCOMM_PORT must be a number"),
        ({"FASTCOMM_PORTT": "1"}, "unknown environment variable FASTCOMM_PORTT"),
        ({"FASTCOMM_NAMESPACES": "x"}, "unknown environment variable FASTCOMM_NAMESPACES"),
        ({"FASTCOMM_LOG_LEVEL": "loud"}, "log_level"),
        ({"FASTCOMM_PORT": "1.5"}, "port"),
    ],
)
def test_bad_env_values_name_the_setting(env: dict[str, str], phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase):
        build_config(env=env)


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"port": 70000}, "port must be between 0 and 65535"),
        ({"port": -1}, "port must be between 0 and 65535"),
        ({"port": "abc"}, "port"),
        ({"max_connections": 0}, "max_connections must be greater than 0"),
        ({"heartbeat": -1.0}, "heartbeat must be greater than 0"),
        ({"drain_timeout": -1.0}, "drain_timeout must be 0 or more"),
        ({"path": "ws"}, "path must start with '/'"),
        ({"app": "nocolon"}, "app must be 'module:attr'"),
        ({"log_format": "xml"}, "log_format"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_values_name_the_setting(overrides: dict[str, object], phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase) as info:
        build_config(overrides, env={})
    assert "\n" not in str(info.value)


def test_zero_is_allowed_where_documented() -> None:
    config = build_config({"port": 0, "drain_timeout": 0, "session_ttl": 0}, env={})
    assert (config.port, config.drain_timeout, config.session_ttl) == (0, 0, 0)


def test_bad_value_in_toml_names_the_setting(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'port = "eighty"\n')
    with pytest.raises(ConfigError, match="port"):
        build_config(env={}, config_file=toml)


def test_unknown_key_in_toml(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        build_config(env={}, config_file=toml)


def test_invalid_toml(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "port = = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as info:
        build_config(env={}, config_file=toml)
    assert "\n" not in str(info.value)


def test_fastcomm_must_be_a_table(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "fastcomm = 1\n")
    with pytest.raises(ConfigError, match=r"\[fastcomm\] must be a table"):
        build_config(env={}, config_file=toml)


def test_missing_config_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match=r"cannot read config file .*absent\.toml"):
        build_config(env={}, config_file=missing)


def test_config_is_frozen() -> None:
    config = build_config(env={})
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


def test_echo_defaults_to_16_mib_messages(tmp_path: Path) -> None:
    assert ECHO_MAX_MESSAGE_SIZE == 16 * 1024 * 1024 + 1024
    assert build_config({"echo": True}, env={}).max_message_size == ECHO_MAX_MESSAGE_SIZE
    assert build_config(env={"FASTCOMM_ECHO": "1"}).max_message_size == ECHO_MAX_MESSAGE_SIZE
    assert build_config(env={}).max_message_size == Config().max_message_size


def test_echo_keeps_a_max_message_size_from_any_source(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "echo = true\nmax_message_size = 2048\n")
    assert build_config(env={}, config_file=toml).max_message_size == 2048
    env = {"FASTCOMM_ECHO": "1", "FASTCOMM_MAX_MESSAGE_SIZE": "4096"}
    assert build_config(env=env).max_message_size == 4096
    flags = {"echo": True, "max_message_size": 512}
    assert build_config(flags, env={}).max_message_size == 512
