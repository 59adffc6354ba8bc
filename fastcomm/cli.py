"""The ``fastcomm`` command line.

``fastcomm serve [APP] [--setting VALUE ...]`` builds the one :class:`Config`
(flags over ``FASTCOMM_*`` environment over ``--config`` TOML over defaults),
loads ``APP`` and runs the server. Every setting flag is derived from a
:class:`Config` field (``max_connections`` -> ``--max-connections``); a flag
left out is None, so the environment and the file still apply.

Any usage error, bad value, :class:`ConfigError` or :class:`AppLoadError`
prints exactly one line, ``fastcomm: error: ...``, to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import typing
from collections.abc import Sequence
from typing import Any, NoReturn

import msgspec

from fastcomm import __version__
from fastcomm import auth as _auth
from fastcomm.config import BYTES, DURATIONS, HELP, SIZES, Config, build_config
from fastcomm.contract import asyncapi_document, jsonschema_document, typescript_module
from fastcomm.errors import AppLoadError, ConfigError, StartupError
from fastcomm.loader import load_app
from fastcomm.logs import configure_logging
from fastcomm.suggest import did_you_mean
from fastcomm.units import format_duration, format_size
from fastcomm.web.demo import demo_url

__all__ = ["build_parser", "main"]

PROG = "fastcomm"
USAGE_ERROR = 2
SCHEMA_FORMATS = ("asyncapi", "typescript", "jsonschema")
# `app` is the positional APP; `namespaces` is structured and lives in the TOML file only.
_SETTINGS = tuple(f for f in msgspec.structs.fields(Config) if f.name not in ("app", "namespaces"))


class _UsageError(Exception):
    """argparse rejected the command line; the message is argparse's, without usage."""


class _Exit(Exception):
    """--help or --version printed their text; the command ends with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, but lines never break inside ``--a-flag``."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        words = " ".join(text.split())
        return textwrap.fill(words, width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage or calling sys.exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Prefix matching would let a future flag silently change what `--heart` means.
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """As argparse's, but an unknown flag is named with the closest known one."""
        words = list(sys.argv[1:] if args is None else args)
        if self._subparsers is not None:  # the top level: its flags come before COMMAND
            for word in words[: next((i for i, w in enumerate(words) if w[:1] != "-"), None)]:
                if word.partition("=")[0] not in self._option_string_actions:
                    self.error(f"unrecognized arguments: {self._hinted(word)}")
        parsed, extras = super().parse_known_args(words, namespace)
        if extras and self._subparsers is None:  # a subcommand: it knows its flags
            self.error(f"unrecognized arguments: {' '.join(map(self._hinted, extras))}")
        return parsed, extras

    def _hinted(self, word: str) -> str:
        if not word.startswith("--"):
            return word
        known = [o[2:] for o in self._option_string_actions if o.startswith("--")]
        return word + did_you_mean(word.partition("=")[0], known, prefix="--")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser; each subcommand sets ``run``, a function of the parsed args."""
    parser = _Parser(prog=PROG, description="A real-time WebSocket server.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    _add_serve(commands)
    _add_bench(commands)
    _add_schema(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 after ``--help``/``--version``, 2 after a usage or configuration error
    (one line on stderr), otherwise what the subcommand returns.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        run: typing.Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except (_UsageError, ConfigError, AppLoadError, StartupError) as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return USAGE_ERROR
    except _Exit as exc:
        return exc.status


def _add_bench(commands: argparse._SubParsersAction[_Parser]) -> None:
    from fastcomm.loadgen.options import add_bench_arguments
    from fastcomm.loadgen.run import run_bench

    bench = commands.add_parser(
        "bench",
        help="load-test a server; exit 1 when a --fail-if threshold is breached",
        description="Drive a fastcomm server (started from --app, or at --url) with a "
        "workload and report throughput and latency percentiles.",
    )
    add_bench_arguments(bench)
    bench.set_defaults(run=run_bench)


def _add_schema(commands: argparse._SubParsersAction[_Parser]) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the app's contract: AsyncAPI 3, TypeScript types or JSON Schema",
        description="Print the contract of APP's messages (its requests, their results, its "
        "pushes and the built-in protocol) on stdout. Errors: one line on stderr, exit 2.",
    )
    schema.add_argument("app", metavar="APP", help="the fastcomm.App: module:attr or file.py:attr")
    schema.add_argument("--format", required=True, choices=SCHEMA_FORMATS, help="what to print")
    schema.set_defaults(run=_schema)


def _schema(args: argparse.Namespace) -> int:
    spec = load_app(args.app).contract()
    if args.format == "typescript":
        text = typescript_module(spec)
    else:
        make = asyncapi_document if args.format == "asyncapi" else jsonschema_document
        text = msgspec.json.format(msgspec.json.encode(make(spec))).decode() + "\n"
    sys.stdout.write(text)
    return 0


def _add_serve(commands: argparse._SubParsersAction[_Parser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the WebSocket server",
        description="Run the WebSocket server. Settings not given as flags come from "
        "FASTCOMM_<SETTING> environment variables (--max-connections: "
        "FASTCOMM_MAX_CONNECTIONS; a repeatable flag's variable takes a comma-separated "
        "list, e.g. FASTCOMM_ALLOWED_ORIGIN=https://a,https://b), then the --config "
        "TOML file, then defaults. Sizes are bytes or take a unit: 64k, 16M, 1MiB "
        "(k, M, G, KiB, MiB, GiB: powers of 1024; kB, MB, GB: of 1000). Durations are "
        "seconds or take a unit: 500ms, 10s, 5m, 1h.",
        epilog="HTTP GET endpoints on the WebSocket port: /healthz (200 while the process "
        "runs), /readyz (200 when accepting connections, 503 while starting or draining), "
        "/status (JSON counters), /metrics (Prometheus text), /asyncapi.json and /docs "
        "(the app's contract) unless --no-docs, /demo with --demo. With "
        "--api-key, the HTTP API: POST /api/<command>, on the WebSocket port with "
        "--transport granian, on --api-port with picows (which serves none without it). "
        "Errors: one line on stderr, exit status 2.",
    )
    serve.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="the fastcomm.App: module:attr or path/to/file.py:attr",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML settings file (or FASTCOMM_CONFIG)")
    fields = {field.name: field for field in _SETTINGS}
    for section, settings in HELP.items():
        group = serve.add_argument_group(section)
        for name, (text, unit) in settings.items():
            if name in fields:
                _add_setting(group, fields[name], text, unit)
    serve.set_defaults(run=_serve)


def _default(field: msgspec.structs.FieldInfo, unit: str) -> str:
    """The default of ``field`` as one would type it (``1MiB``, ``25s``, ``200``)."""
    value = field.default
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if unit == BYTES and isinstance(value, int):
        return format_size(value)
    if field.name in DURATIONS:
        return format_duration(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _add_setting(
    group: argparse._ArgumentGroup, field: msgspec.structs.FieldInfo, text: str, unit: str
) -> None:
    """Add the flag for one Config field, shaped by the field's type, described by HELP."""
    flag = "--" + field.name.replace("_", "-")
    kind: Any = field.type
    options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if type(None) in typing.get_args(kind) and len(options) == 1:
        kind = options[0]  # "N | None": None is the unset default, the flag takes an N
    units = f"{unit}; " if unit else ""
    if field.name in SIZES:
        units = "bytes, or with a unit: 64k, 16M, 1MiB; "
    elif field.name in DURATIONS:
        units = "seconds, or with a unit: 500ms, 10s, 5m, 1h; "
    common: dict[str, Any] = {
        "dest": field.name,
        "default": None,
        "help": f"{text} ({units}default: {_default(field, unit)})",
    }
    if kind is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
    elif field.name in SIZES or field.name in DURATIONS:  # parsed by build_config
        metavar = "SIZE" if field.name in SIZES else "DURATION"
        group.add_argument(flag, metavar=metavar, **common)
    elif kind in (int, float):
        group.add_argument(flag, type=kind, metavar="N", **common)
    elif typing.get_origin(kind) is typing.Literal:
        group.add_argument(flag, choices=typing.get_args(kind), **common)
    elif typing.get_origin(kind) is tuple:
        # Repeatable, singular name: --allowed-origin A --allowed-origin B.
        common["help"] = f"{text}; repeat the flag for more (default: {_default(field, unit)})"
        group.add_argument(flag.removesuffix("s"), action="append", metavar="VALUE", **common)
    else:
        group.add_argument(flag, metavar="FILE" if unit == "file" else "VALUE", **common)


def _serve(args: argparse.Namespace) -> int:
    overrides = {field.name: getattr(args, field.name) for field in _SETTINGS}
    overrides["app"] = args.app
    config = build_config(overrides, config_file=args.config)
    configure_logging(config.log_level, config.log_format, config.worker_id)
    app = None if config.app is None else load_app(config.app)
    if app is not None or config.transport == "picows":
        app = _auth.configure(app, config)  # JWT when --jwt-secret is set
    # granian without APP: its worker installs the JWT check on the default App.
    if config.demo:
        logging.getLogger("fastcomm").info("demo chat page at %s", demo_url(config))
    # Looked up at call time, so tests can stand in a fake server module.
    from fastcomm.server import serve

    return serve(config, app)
