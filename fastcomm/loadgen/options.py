"""Command-line options of ``fastcomm bench`` and their validation.

:func:`add_bench_arguments` adds the flags to any argparse parser (the CLI's
``bench`` subcommand); :func:`options_from_args` turns the parsed namespace
into one frozen :class:`BenchOptions`, raising
:class:`~fastcomm.errors.ConfigError` (a one-line message) for any bad value,
including a malformed ``--fail-if``.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

import msgspec

from fastcomm.errors import ConfigError
from fastcomm.loadgen.scenarios import SCENARIOS
from fastcomm.loadgen.thresholds import Threshold, parse_threshold
from fastcomm.units import parse_duration

__all__ = ["BenchOptions", "add_bench_arguments", "options_from_args"]

# Per-scenario defaults of --conns, --duration and --rate.
_DEFAULTS: dict[str, tuple[int, float, float]] = {
    "rpc": (64, 10.0, 0.0),
    "connect": (1000, 0.0, 0.0),
    "fanout": (1000, 10.0, 50.0),
    "idle": (1000, 5.0, 0.0),
}


class BenchOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A validated ``fastcomm bench`` invocation; see :func:`add_bench_arguments`."""

    scenario: str
    conns: int
    duration: float
    warmup: float
    rate: float
    size: int
    encoding: str
    message: dict[str, Any] | None
    processes: int
    url: str | None
    app: str | None
    server_pid: int | None
    server_args: str
    channel: str
    fanout_mode: str
    concurrency: int
    timeout: float
    progress: bool | None
    json: bool
    fail_if: tuple[Threshold, ...]
    headers: tuple[tuple[str, str], ...] = ()
    allow_server_close: bool = False


# RFC 9110 field names are tokens; values may not hold CR, LF or NUL (header injection).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = frozenset(
    {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"}
)


def _duration(text: str) -> float:
    """A duration flag's value in seconds (``10``, ``500ms``, ``10s``, ``5m``, ``1h``)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fastcomm bench`` flags to ``parser`` (values are checked later,
    by :func:`options_from_args`, so that errors are one line)."""
    if parser.epilog is None:
        names = "; ".join(f"{name}: {', '.join(s.metrics)}" for name, s in SCENARIOS.items())
        parser.epilog = (
            "Exit status: 0 all thresholds passed, 1 a --fail-if threshold was breached, "
            "2 usage error, 3 the benchmark could not run or measured nothing (a handshake "
            "failed or was refused, the server closed every connection or, without "
            "--allow-server-close, any, nothing completed), whatever --fail-if says. "
            f"--fail-if metrics by scenario - {names}; every scenario: closed_<code>."
        )
    add = parser.add_argument
    add("--scenario", choices=tuple(SCENARIOS), default="rpc",
        help="rpc: closed-loop request/reply; connect: connection storm; fanout: publish to "
        "N subscribers; idle: hold N connections and weigh them (default: rpc)")  # fmt: skip
    add("--conns", type=int, metavar="N",
        help="connections (fanout: subscribers); default rpc 64, others 1000")  # fmt: skip
    add("--duration", type=_duration, metavar="DURATION",
        help="how long to measure (idle: to hold the connections), in seconds or with a "
        "unit: 500ms, 10s, 5m, 1h; default rpc 10s, fanout 10s, idle 5s; connect has "
        "none: its storm ends when every connection is made")  # fmt: skip
    add("--warmup", type=_duration, metavar="DURATION", default=1.0,
        help="unmeasured time first (default 1s)")  # fmt: skip
    add("--rate", type=float, metavar="R",
        help="rpc: requests/s in total, open loop (default: closed loop); connect: new "
        "connections/s (default: all at once); fanout: publications/s (default 50)")  # fmt: skip
    add("--size", type=int, metavar="BYTES", default=64,
        help="bytes of the 'data' string of each request or publication, unless --message "
        "has its own 'data' (default 64)")  # fmt: skip
    add("--encoding", choices=("json", "msgpack"), default="json",
        help="subprotocol: fastcomm.v1.json or fastcomm.v1.msgpack (default: json)")  # fmt: skip
    add("--message", metavar="JSON",
        help='rpc request template, e.g. \'{"type":"add","a":1,"b":2}\' '
        '(default {"type":"ping"}); an id is added')  # fmt: skip
    add("--processes", type=int, metavar="N", default=1,
        help="spread connections over N load-generator processes (default 1)")  # fmt: skip
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="benchmark the server at this ws:// URL")
    target.add_argument("--app", metavar="MODULE:ATTR",
        help="start 'fastcomm serve APP' on a free port and benchmark it "
        "(default, without --url: the bundled bench app)")  # fmt: skip
    add("--server-pid", type=int, metavar="PID",
        help="with --url: process id of a local server, for its CPU and memory")  # fmt: skip
    add("--server-args", default="", metavar="ARGS",
        help="extra 'fastcomm serve' flags for the started server, as one string")  # fmt: skip
    add("--channel", default="bench", help="fanout channel name (default: bench)")
    add("--fanout-mode", choices=("auto", "channel", "app"), default="auto",
        help="fanout: how subscribers join and the publisher publishes; channel: the "
        "protocol's subscribe/publish; app: the bundled bench app's bench_join/"
        "bench_publish messages, for a server without channels; auto: channel, or app "
        "when the server answers unknown_type (default: auto)")  # fmt: skip
    add("--concurrency", type=int, metavar="N",
        help="handshakes in flight while connecting (default 256; connect: all)")  # fmt: skip
    add("--timeout", type=_duration, metavar="DURATION", default=10.0,
        help="handshake timeout (default 10s)")  # fmt: skip
    add("--progress", action=argparse.BooleanOptionalAction, default=None,
        help="live progress on stderr (default: when stderr is a terminal)")  # fmt: skip
    add("--json", action="store_true", help="print the result as JSON")
    add("--fail-if", action="append", default=[], metavar="EXPR",
        help="exit 1 if EXPR holds, e.g. 'p99_ms>10' or 'throughput<50k' (repeatable)")  # fmt: skip
    add("--token", metavar="TOKEN",
        help="send 'Authorization: Bearer TOKEN' with every upgrade (the connect "
        "hook's token)")  # fmt: skip
    add("--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="extra HTTP header for every upgrade (repeatable)")  # fmt: skip
    add("--allow-server-close", action="store_true",
        help="measure anyway when the server closes some (not all) connections; "
        "gate on them with --fail-if 'closed_by_server>0' or 'closed_4029>0'")  # fmt: skip


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        more = "0 or more" if allow_zero else "greater than 0"
        raise ConfigError(f"--{name} must be {more}, got {value:g}")


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Validate ``args``; raise :class:`ConfigError` with a one-line message."""
    scenario = SCENARIOS[args.scenario]
    conns, duration, rate = _DEFAULTS[args.scenario]
    conns = conns if args.conns is None else args.conns
    duration = duration if args.duration is None else args.duration
    rate = rate if args.rate is None else args.rate
    _positive("conns", conns)
    _positive("duration", duration, allow_zero=args.scenario == "connect")
    _positive("warmup", args.warmup, allow_zero=True)
    _positive("rate", rate, allow_zero=args.scenario != "fanout")
    _positive("size", args.size, allow_zero=True)
    _positive("processes", args.processes)
    _positive("timeout", args.timeout)
    if args.concurrency is not None:
        _positive("concurrency", args.concurrency)
    concurrency = args.concurrency or (conns if args.scenario == "connect" else 256)
    if args.url is not None and not args.url.startswith(("ws://", "wss://")):
        raise ConfigError(f"--url must start with ws:// or wss://, got {args.url!r}")
    if args.server_pid is not None and args.url is None:
        raise ConfigError("--server-pid is only for --url (a started server is probed anyway)")
    if args.app is not None and ":" not in args.app:
        raise ConfigError(f"--app must be 'module:attr' or 'file.py:attr', got {args.app!r}")
    thresholds = tuple(parse_threshold(text, scenario.metrics) for text in args.fail_if)
    headers = _headers(args.header, args.token)
    return BenchOptions(
        scenario=args.scenario, conns=conns, duration=duration, warmup=args.warmup, rate=rate,
        size=args.size, encoding=args.encoding, message=_message(args.message),
        processes=min(args.processes, conns), url=args.url, app=args.app,
        server_pid=args.server_pid, server_args=args.server_args, channel=args.channel,
        fanout_mode=args.fanout_mode, concurrency=concurrency, timeout=args.timeout,
        progress=args.progress, json=args.json, fail_if=thresholds, headers=headers,
        allow_server_close=args.allow_server_close,
    )  # fmt: skip


def _headers(texts: list[str], token: str | None) -> tuple[tuple[str, str], ...]:
    """``--header 'Name: value'`` pairs plus ``--token`` as a bearer ``Authorization``."""
    headers: dict[str, tuple[str, str]] = {}
    for text in texts:
        name, colon, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name):
            raise ConfigError(f"bad --header {text!r}: expected 'Name: value'")
        if any(ch in value for ch in "\r\n\0"):
            raise ConfigError(f"bad --header {name!r}: the value holds a line break or NUL")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigError(f"bad --header {name!r}: the WebSocket handshake sets it")
        headers[name.lower()] = (name, value)
    if token is not None:
        if not token or any(ch in token for ch in "\r\n\0 "):
            raise ConfigError("--token must be non-empty, without spaces or line breaks")
        if "authorization" in headers:
            raise ConfigError("--token and --header 'Authorization: ...' both set the same header")
        headers["authorization"] = ("Authorization", f"Bearer {token}")
    return tuple(headers.values())


def _message(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        message = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise ConfigError(f"--message is not valid JSON: {text!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ConfigError('--message must be a JSON object with a string "type"')
    return message
