"""``python -m fastcomm``: exit codes and the one-line error contract.

Every failure must exit 2 with exactly one line, ``fastcomm: error: ...``, on
stderr. These run the real command in a subprocess; every case fails before a
server would start. The last tests run ``main`` in-process with a fake runtime.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import fastcomm
from fastcomm import cli
from fastcomm.config import ECHO_MAX_MESSAGE_SIZE, Config
from tests.integration.conftest import ServerProcess
from tests.traced import traced

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fastcomm", *args],
        check=False,
        cwd=cwd,
        env=traced(environ),
        capture_output=True,
        text=True,
        timeout=30,
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], phrase: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastcomm: error: "), lines[0]
    assert phrase in lines[0], lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


TRANSPORTS = [(), ("--transport", "granian", "fastcomm.loadgen.app:app")]


@pytest.mark.parametrize("transport", TRANSPORTS, ids=["picows", "granian"])
def test_port_in_use_is_one_line(
    tmp_path: Path, busy_port: int, transport: tuple[str, ...]
) -> None:
    result = run_cli("serve", *transport, "--port", str(busy_port), cwd=tmp_path)
    assert_usage_error(result, f"cannot listen on 127.0.0.1:{busy_port}: Address already in use")
    assert result.stdout == ""  # granian's "Starting granian" line is not printed either


def test_granian_logs_its_start_once_it_listens() -> None:
    server = ServerProcess("--transport", "granian", "fastcomm.loadgen.app:app")
    server.stop()  # SIGTERM: granian exits normally, its output flushed
    output = server.output()
    assert output.index("Starting granian") < output.index("Listening at: http://127.0.0.1:")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=["picows", "granian"])
def test_unknown_host_is_one_line(tmp_path: Path, transport: tuple[str, ...]) -> None:
    result = run_cli(
        "serve", *transport, "--host", "no-such-host.invalid", "--port", "0", cwd=tmp_path
    )
    assert_usage_error(result, "cannot listen on no-such-host.invalid:0: ")


def test_api_port_in_use_is_one_line(tmp_path: Path, busy_port: int) -> None:
    args = ("serve", "--port", "0", "--api-key", "k", "--api-port", str(busy_port))
    # Nothing was announced, so nothing but the error is printed (no drain log lines).
    assert_usage_error(
        run_cli(*args, cwd=tmp_path),
        f"cannot serve the HTTP API on 127.0.0.1:{busy_port}: Address already in use",
    )


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"fastcomm {fastcomm.__version__}\n"
    assert result.stderr == ""


def test_help_exits_0(tmp_path: Path) -> None:
    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--max-connections" in result.stdout
    assert "--allowed-origin" in result.stdout


def test_serve_help_speaks_in_flags_and_lists_the_endpoints(tmp_path: Path) -> None:
    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for endpoint in ("/healthz (200", "/readyz (200", "/status (JSON", "/metrics (Prometheus"):
        assert endpoint in text
    settings = [f.name for f in msgspec.structs.fields(Config) if "_" in f.name]
    named = [name for name in settings if re.search(rf"(?<![\w-]){name}(?!\w)", text)]
    assert named == []  # --ssl-keyfile, not ssl_keyfile
    assert "needs --ssl-keyfile" in text and "4x --rate-limit + 100" in text
    assert "--rate-limit N messages per connection" in text
    assert "(per second; default: 200)" in text  # not 200.0
    assert "more than 1 needs a broker shared between processes (--broker redis:" in text
    # Lines break between words, never inside a flag.
    assert not [line for line in result.stdout.splitlines() if re.search(r"\w-$", line)]


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("nosuchcommand",), "invalid choice: 'nosuchcommand'"),
        (("serve", "--port", "abc"), "argument --port: invalid int value: 'abc'"),
        (("serve", "--port", "70000"), "port must be between 0 and 65535"),
        (("serve", "--rate-limit", "fast"), "argument --rate-limit: invalid float value"),
        (("serve", "--heartbeat", "10x"), "heartbeat must be a duration in seconds such as"),
        (("serve", "--max-connections", "0"), "max_connections must be greater than 0"),
        (("serve", "--path", "ws"), "path must start with '/'"),
        (("serve", "--log-level", "loud"), "argument --log-level: invalid choice: 'loud'"),
        (("serve", "--bogus"), "unrecognized arguments: --bogus"),
        (
            ("serve", "--max-conn", "5"),
            "unrecognized arguments: --max-conn (did you mean --max-connections?)",
        ),
        (
            ("serve", "--heartbaet=5", "--bogus"),
            "unrecognized arguments: --heartbaet=5 (did you mean --heartbeat?) --bogus",
        ),
        (("serve", "--no-presense"), "--no-presense (did you mean --no-presence?)"),
        (("--verison",), "unrecognized arguments: --verison (did you mean --version?)"),
        (("bench", "--duraton", "3"), "--duraton (did you mean --duration?) 3"),
        (("serve", "--host", ""), "host must not be empty: 0.0.0.0 or :: listens on every"),
        (("serve", "--jwt-secret", ""), "jwt_secret must not be empty"),
        (
            ("serve", "--jwt-secret", "s", "--jwt-algorithm", "HS521"),
            "jwt_algorithms: unknown JWT algorithm 'HS521' (did you mean HS512?)",
        ),
        (("serve", "--jwt-secret", "s", "--jwt-algorithm", "none"), "must not include 'none'"),
        (("serve", "nocolon"), "app must be 'module:attr'"),
        (("serve", "mod:"), "app must be 'module:attr'"),
    ],
)
def test_bad_command_line(tmp_path: Path, args: tuple[str, ...], phrase: str) -> None:
    assert_usage_error(run_cli(*args, cwd=tmp_path), phrase)


@pytest.mark.parametrize(
    ("env", "phrase"),
    [
        ({"FASTCOMM_PORT": "abc"}, "FASTCOMM_PORT must be a number"),
        ({"FASTCOMM_ECHO": "maybe"}, "FASTCOMM_ECHO must be a boolean"),
        ({"FASTCOMM_PORTT": "1"}, "FASTCOMM_PORTT (did you mean FASTCOMM_PORT?)"),
        ({"FASTCOMM_HEARTBEET": "1"}, "FASTCOMM_HEARTBEET (did you mean FASTCOMM_HEARTBEAT?)"),
        ({"FASTCOMM_ALLOWED_ORIGN": "x"}, "(did you mean FASTCOMM_ALLOWED_ORIGIN?)"),
    ],
)
def test_bad_environment(tmp_path: Path, env: dict[str, str], phrase: str) -> None:
    assert_usage_error(run_cli("serve", cwd=tmp_path, env=env), phrase)


def test_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("port = = 1\n[unclosed\n")
    result = run_cli("serve", "--config", "bad.toml", cwd=tmp_path)
    assert_usage_error(result, "is not valid TOML")


def test_toml_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes('host = "caf\u00e9"\n'.encode("latin-1"))
    result = run_cli("serve", "--config", "latin1.toml", cwd=tmp_path)
    assert_usage_error(result, "config file latin1.toml is not valid TOML: it is not UTF-8")


def test_bad_toml_from_env(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("port = = 1\n")
    result = run_cli("serve", cwd=tmp_path, env={"FASTCOMM_CONFIG": "bad.toml"})
    assert_usage_error(result, "is not valid TOML")


def test_misspelled_toml_keys_get_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "fc.toml").write_text("[fastcomm]\nheartbeet = 5\n")
    assert_usage_error(
        run_cli("serve", "--config", "fc.toml", cwd=tmp_path),
        "config file fc.toml: unknown setting heartbeet (did you mean heartbeat?)",
    )
    (tmp_path / "ns.toml").write_text('[[namespaces]]\npattern = "a"\nhistroy_ttl = 5\n')
    assert_usage_error(
        run_cli("serve", "--config", "ns.toml", cwd=tmp_path),
        "config file ns.toml: namespaces[0]: unknown setting histroy_ttl "
        "(did you mean history_ttl?)",
    )


def test_bad_value_in_toml(tmp_path: Path) -> None:
    (tmp_path / "fc.toml").write_text('[fastcomm]\nport = "eighty"\n')
    assert_usage_error(run_cli("serve", "--config", "fc.toml", cwd=tmp_path), "port")


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", "absent.toml", cwd=tmp_path)
    assert_usage_error(result, "cannot read config file absent.toml")


def test_flag_beats_bad_env(tmp_path: Path) -> None:
    # The flag wins over FASTCOMM_PORT, so the error reported is the flag's own.
    result = run_cli("serve", "--port", "70000", cwd=tmp_path, env={"FASTCOMM_PORT": "80"})
    assert_usage_error(result, "got 70000")


def test_missing_module(tmp_path: Path) -> None:
    result = run_cli("serve", "no_such_module_xyz:app", cwd=tmp_path)
    assert_usage_error(result, "module 'no_such_module_xyz' not found")


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("serve", "apps/absent.py:app", cwd=tmp_path)
    assert_usage_error(result, "app file 'apps/absent.py' not found")


def test_file_with_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def app(:\n    pass\n")
    result = run_cli("serve", "broken.py:app", cwd=tmp_path)
    assert_usage_error(result, "error while importing 'broken.py': SyntaxError")


def test_module_with_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "broken_mod.py").write_text("app = (\n")
    result = run_cli("serve", "broken_mod:app", cwd=tmp_path)
    assert_usage_error(result, "error while importing 'broken_mod': SyntaxError")


def test_module_raising_on_import(tmp_path: Path) -> None:
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    result = run_cli("serve", "raises:app", cwd=tmp_path)
    assert_usage_error(result, "RuntimeError: boom second line")


def test_module_with_missing_dependency_is_not_reported_as_missing(tmp_path: Path) -> None:
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_xyz\n")
    result = run_cli("serve", "needs_dep:app", cwd=tmp_path)
    assert_usage_error(result, "ModuleNotFoundError: No module named 'no_such_dependency_xyz'")


def test_missing_attribute_in_module_from_cwd(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text("other = 1\n")
    result = run_cli("serve", "myapp:app", cwd=tmp_path)
    assert_usage_error(result, "'myapp' has no attribute 'app'")


def test_missing_attribute_in_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "myapp.py").write_text("other = 1\n")
    result = run_cli("serve", "sub/myapp.py:app", cwd=tmp_path)
    assert_usage_error(result, "'sub/myapp.py' has no attribute 'app'")


@pytest.mark.parametrize("spec", ["notapp.py:app", "notapp:app"])
def test_attribute_is_not_an_app(tmp_path: Path, spec: str) -> None:
    (tmp_path / "notapp.py").write_text("app = {'not': 'an App'}\n")
    result = run_cli("serve", spec, cwd=tmp_path)
    assert_usage_error(result, "is a dict, not a fastcomm.App")


def test_app_from_env(tmp_path: Path) -> None:
    result = run_cli("serve", cwd=tmp_path, env={"FASTCOMM_APP": "no_such_module_xyz:app"})
    assert_usage_error(result, "module 'no_such_module_xyz' not found")


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Config, object]]:
    """Replace runtime.serve (and logging setup) in-process; return the calls it gets."""
    seen: list[tuple[Config, object]] = []

    def serve(config: Config, app: object) -> int:
        seen.append((config, app))
        return 7

    runtime = types.ModuleType("fastcomm.server")
    runtime.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fastcomm.server", runtime)
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt, worker=None: None)
    for key in [k for k in os.environ if k.startswith("FASTCOMM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_app may prepend a directory
    return seen


def test_flags_reach_the_runtime(
    fake_runtime: list[tuple[Config, object]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FASTCOMM_HOST", "0.0.0.0")
    toml = tmp_path / "fc.toml"
    toml.write_text("max_connections = 3\nport = 1\n")

    flags = "--port 0 --echo --no-presence --heartbeat 2.5 --log-format json"
    origins = "--allowed-origin https://a --allowed-origin https://b"
    status = cli.main(["serve", "--config", str(toml), *flags.split(), *origins.split()])

    assert status == 7
    [(config, app)] = fake_runtime
    assert app is None
    assert config == Config(
        host="0.0.0.0",
        port=0,
        echo=True,
        presence=False,
        allowed_origins=("https://a", "https://b"),
        heartbeat=2.5,
        log_format="json",
        max_connections=3,
        max_message_size=ECHO_MAX_MESSAGE_SIZE,  # the echo endpoint's own default
    )


def test_loaded_app_reaches_the_runtime(
    fake_runtime: list[tuple[Config, object]], tmp_path: Path
) -> None:
    from fastcomm.app import App

    app_file = tmp_path / "chat_app.py"
    app_file.write_text("from fastcomm.app import App\n\nclass Holder:\n    app = App()\n")
    spec = f"{app_file}:Holder.app"

    assert cli.main(["serve", spec]) == 7

    [(config, app)] = fake_runtime
    assert config.app == spec
    assert isinstance(app, App)


def test_help_describes_every_setting_with_its_unit(tmp_path: Path) -> None:
    from fastcomm.config import HELP

    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for section in HELP.values():
        for name, (description, unit) in section.items():
            if name in ("app", "namespaces"):
                continue
            flag = "--" + name.replace("_", "-")
            if name in ("allowed_origins", "jwt_algorithms"):  # repeatable: singular
                flag = flag.removesuffix("s")
            assert f"{flag} " in text, flag
            assert " ".join(description.split()) in text, name
            if unit == "seconds":
                assert f"{flag} DURATION {' '.join(description.split())} (seconds, or" in text
            elif unit and unit != "bytes":
                assert f"({unit}; default:" in text, name
    assert "--max-message-size SIZE message size after reassembly; close 1009 above it" in text
    assert "(bytes, or with a unit: 64k, 16M, 1MiB; default: 1MiB)" in text
    assert (
        "--heartbeat DURATION ping a connection idle for this long "
        "(seconds, or with a unit: 500ms, 10s, 5m, 1h; default: 25s)"
    ) in text
    assert "(seconds, or with a unit: 500ms, 10s, 5m, 1h; default: 5m)" in text  # session_ttl
    assert "Durations are seconds or take a unit: 500ms, 10s, 5m, 1h." in text
    assert "FASTCOMM_ALLOWED_ORIGIN=https://a,https://b" in text


@pytest.mark.parametrize(
    ("args", "env", "phrase"),
    [
        (("--max-message-size", "lots"), {}, "max_message_size must be a size such as"),
        ((), {"FASTCOMM_MAX_CONNECTIONS": "x"}, "FASTCOMM_MAX_CONNECTIONS must be a number"),
        ((), {"FASTCOMM_MAX_MESSAGE_SIZE": "1q"}, "FASTCOMM_MAX_MESSAGE_SIZE must be a size"),
        ((), {"FASTCOMM_HEARTBEAT": "10x"}, "FASTCOMM_HEARTBEAT must be a duration in seconds"),
        (
            (),
            {"FASTCOMM_ALLOWED_ORIGIN": "https://a", "FASTCOMM_ALLOWED_ORIGINS": "https://b"},
            "FASTCOMM_ALLOWED_ORIGIN and FASTCOMM_ALLOWED_ORIGINS are the same setting",
        ),
        ((), {"FASTCOMM_MAX_CONNECTIONS": "0"}, "FASTCOMM_MAX_CONNECTIONS: max_connections must"),
    ],
)
def test_bad_settings_name_their_source(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], phrase: str
) -> None:
    assert_usage_error(run_cli("serve", *args, cwd=tmp_path, env=env), phrase)


def test_bad_toml_value_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "fastcomm.toml").write_text('max_connections = 0\nmax_message_size = "64k"\n')
    result = run_cli("serve", "--config", "fastcomm.toml", cwd=tmp_path)
    assert_usage_error(result, "config file fastcomm.toml: max_connections must be greater than 0")


def test_units_and_singular_list_variable_reach_the_runtime(
    fake_runtime: list[tuple[Config, object]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FASTCOMM_ALLOWED_ORIGIN", "https://a,https://b")
    monkeypatch.setenv("FASTCOMM_MAX_OUTBOUND_BUFFER", "16M")
    monkeypatch.setenv("FASTCOMM_SESSION_TTL", "5m")
    toml = tmp_path / "fc.toml"
    toml.write_text('api_max_body = "64k"\nhistory_ttl = "1h"\n')

    flags = ["--max-message-size", "1MiB", "--heartbeat", "10s", "--drain-timeout", "500ms"]
    assert cli.main(["serve", "--config", str(toml), *flags]) == 7

    [(config, _)] = fake_runtime
    assert config.allowed_origins == ("https://a", "https://b")
    assert config.max_outbound_buffer == 16 * 1024 * 1024
    assert config.max_message_size == 1024 * 1024
    assert config.api_max_body == 64 * 1024
    assert (config.heartbeat, config.drain_timeout) == (10.0, 0.5)
    assert (config.session_ttl, config.history_ttl) == (300.0, 3600.0)
