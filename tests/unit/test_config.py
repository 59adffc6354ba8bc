"""build_config: precedence flags > FASTCOMM_* env > TOML > defaults, and its errors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fastcomm.config import DURATIONS, HELP, SIZES, Config, Namespace, build_config
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1048576),
        ("64k", 64 * 1024),
        ("16M", 16 * 1024 * 1024),
        ("1MiB", 1024 * 1024),
        ("2 KiB", 2048),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("10kB", 10_000),
        ("3MB", 3_000_000),
        ("512b", 512),
        ("1_000", 1000),
    ],
)
def test_sizes_accept_units_in_flags_env_and_toml(tmp_path: Path, text: str, expected: int) -> None:
    assert build_config({"max_message_size": text}, env={}).max_message_size == expected
    env = {"FASTCOMM_MAX_OUTBOUND_BUFFER": text}
    assert build_config(env=env).max_outbound_buffer == expected
    toml = write_toml(tmp_path, f'api_max_body = "{text}"\nread_buffer_size = "{text}"\n')
    config = build_config(env={}, config_file=toml)
    assert (config.api_max_body, config.read_buffer_size) == (expected, expected)


def test_toml_size_may_still_be_an_integer(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "max_message_size = 4096\n")
    assert build_config(env={}, config_file=toml).max_message_size == 4096


@pytest.mark.parametrize("text", ["1q", "MiB", "-1", "1 k b", "1KiBs", ""])
def test_bad_sizes_name_where_they_came_from(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"^FASTCOMM_MAX_MESSAGE_SIZE must be a size such as"):
        build_config(env={"FASTCOMM_MAX_MESSAGE_SIZE": text})
    toml = write_toml(tmp_path, f'max_message_size = "{text}"\n')
    with pytest.raises(ConfigError, match=r"^config file .*fastcomm\.toml: max_message_size must"):
        build_config(env={}, config_file=toml)
    with pytest.raises(ConfigError, match=r"^max_message_size must be a size such as"):
        build_config({"max_message_size": text}, env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", 10.0),
        ("2.5", 2.5),
        ("1_000", 1000.0),
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        (" 2 H ", 7200.0),
    ],
)
def test_durations_accept_units_in_flags_env_and_toml(
    tmp_path: Path, text: str, expected: float
) -> None:
    assert build_config({"heartbeat": text}, env={}).heartbeat == expected
    assert build_config(env={"FASTCOMM_SESSION_TTL": text}).session_ttl == expected
    toml = write_toml(
        tmp_path,
        f'drain_timeout = "{text}"\nhistory_ttl = "{text}"\n'
        f'[[namespaces]]\npattern = "chat:*"\nhistory_ttl = "{text}"\n',
    )
    config = build_config(env={}, config_file=toml)
    assert (config.drain_timeout, config.history_ttl) == (expected, expected)
    assert config.namespaces[0].history_ttl == expected


def test_a_bare_toml_number_is_still_seconds(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "heartbeat = 3\nsession_ttl = 0.5\n")
    config = build_config(env={}, config_file=toml)
    assert (config.heartbeat, config.session_ttl) == (3.0, 0.5)


def test_every_seconds_setting_is_a_duration() -> None:
    timeouts = {"handshake_timeout", "heartbeat", "heartbeat_timeout", "drain_timeout"}
    timeouts |= {"publish_timeout", "broker_wait", "idempotency_window"}
    cluster = {"session_checkpoint", "node_ttl", "command_timeout"}
    ttls = {"session_ttl", "history_ttl", "presence_ttl", "history_meta_ttl"}
    assert timeouts | cluster | ttls == DURATIONS


@pytest.mark.parametrize("text", ["10x", "s", "1 m s", "10sec", "", "ten"])
def test_bad_durations_say_seconds_and_where_they_came_from(tmp_path: Path, text: str) -> None:
    accepted = "must be a duration in seconds such as 30 or 2.5, or with a unit: 500ms, 10s"
    with pytest.raises(ConfigError, match=f"^FASTCOMM_HEARTBEAT {accepted}"):
        build_config(env={"FASTCOMM_HEARTBEAT": text})
    toml = write_toml(tmp_path, f'[[namespaces]]\npattern = "a"\nhistory_ttl = "{text}"\n')
    with pytest.raises(ConfigError, match=r"^config file .*: namespaces\[0\]\.history_ttl must"):
        build_config(env={}, config_file=toml)
    with pytest.raises(ConfigError, match=f"^drain_timeout {accepted}") as info:
        build_config({"drain_timeout": text}, env={})
    assert str(info.value).endswith(f"got {text!r}")


def test_a_negative_duration_gets_the_range_error() -> None:
    with pytest.raises(ConfigError, match=r"heartbeat must be greater than 0, got -5\.0"):
        build_config({"heartbeat": "-5s"}, env={})


@pytest.mark.parametrize("key", ["FASTCOMM_ALLOWED_ORIGIN", "FASTCOMM_ALLOWED_ORIGINS"])
def test_list_variable_matches_the_flag_name_too(key: str) -> None:
    config = build_config(env={key: "https://a, https://b"})
    assert config.allowed_origins == ("https://a", "https://b")
    assert build_config(env={"FASTCOMM_JWT_ALGORITHM": "HS512"}).jwt_algorithms == ("HS512",)


def test_singular_and_plural_variable_together_is_an_error() -> None:
    env = {"FASTCOMM_ALLOWED_ORIGIN": "https://a", "FASTCOMM_ALLOWED_ORIGINS": "https://b"}
    with pytest.raises(ConfigError, match="are the same setting: set one"):
        build_config(env=env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FASTCOMM_MAX_CONNECTIONS": "x"}, "FASTCOMM_MAX_CONNECTIONS must be a number, got 'x'"),
        (
            {"FASTCOMM_MAX_CONNECTIONS": "0"},
            "FASTCOMM_MAX_CONNECTIONS: max_connections must be greater than 0, got 0",
        ),
        ({"FASTCOMM_PORT": "1.5"}, "FASTCOMM_PORT: invalid configuration: Expected `int`"),
        ({"FASTCOMM_LOG_LEVEL": "loud"}, "FASTCOMM_LOG_LEVEL: invalid configuration: Invalid"),
        ({"FASTCOMM_SSL_KEYFILE": "k.pem"}, "FASTCOMM_SSL_KEYFILE: ssl_keyfile is set but"),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(env=env)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_connections = 0\n", "max_connections must be greater than 0, got 0"),
        ('port = "eighty"\n', "invalid configuration: Expected `int`, got `str` - at `$.port`"),
        ("prot = 1\n", "unknown setting prot (did you mean port?)"),
        ("xyz = 1\n", "unknown setting xyz"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    toml = write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        build_config(env={}, config_file=toml)
    assert str(info.value) == f"config file {toml}: {message}"


def test_a_flag_over_a_file_value_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "max_connections = 5\n")
    with pytest.raises(ConfigError) as info:
        build_config({"max_connections": 0}, env={}, config_file=toml)
    assert str(info.value) == "max_connections must be greater than 0, got 0"


def test_every_setting_is_described_once() -> None:
    described = [name for section in HELP.values() for name in section]
    assert sorted(described) == sorted(f.name for f in msgspec.structs.fields(Config))
    assert all(text for section in HELP.values() for text, _ in section.values())
    assert {"api_max_body", "max_message_size", "max_outbound_buffer"} <= SIZES
    assert HELP["TLS"].keys() == {"ssl_certfile", "ssl_keyfile"}


def test_a_misspelled_variable_or_key_gets_the_closest_name() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(env={"FASTCOMM_MAX_CONN": "5"})
    assert str(info.value) == (
        "unknown environment variable FASTCOMM_MAX_CONN (did you mean FASTCOMM_MAX_CONNECTIONS?)"
    )
    with pytest.raises(ConfigError) as info:
        build_config(env={"FASTCOMM_XYZ": "5"})  # nothing is close: no guess
    assert str(info.value) == "unknown environment variable FASTCOMM_XYZ"
    with pytest.raises(ConfigError) as info:
        build_config({"session_tll": 5}, env={})
    assert str(info.value) == "unknown setting session_tll (did you mean session_ttl?)"
