"""Presenting a benchmark result: a human table or one JSON document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from fastcomm.loadgen.client import encode_for
from fastcomm.loadgen.options import BenchOptions
from fastcomm.loadgen.rpc import build_request
from fastcomm.loadgen.thresholds import Breach

__all__ = ["render_json", "render_table"]

_UNITS = (
    ("_ms", "ms"), ("_pct", "%"), ("_kib", "KiB"), ("_us_per_req", "µs"),
    ("_us_per_conn", "µs"), ("_us_per_delivery", "µs"), ("seconds", "s"),
    ("throughput", "/s"), ("connect_rate", "/s"),
)  # fmt: skip


def _unit(name: str) -> str:
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def _number(value: float) -> str:
    if value != value:
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.3f}"


def _config(options: BenchOptions, url: str) -> dict[str, Any]:
    config = {
        "scenario": options.scenario,
        "url": url,
        "conns": options.conns,
        "duration": options.duration,
        "warmup": options.warmup,
        "rate": options.rate,
        "size": options.size,
        "encoding": options.encoding,
        "processes": options.processes,
    }
    if options.scenario == "rpc":
        # What goes on the wire: --message (or ping), its id and the --size data string,
        # unless --message brings its own data (then --size is not used: null).
        request = build_request(options.message, options.size, 1)
        config["message_bytes"] = len(encode_for(options.encoding)(request))
        if options.message is not None and "data" in options.message:
            config["size"] = None
    return config


def render_table(
    options: BenchOptions,
    url: str,
    metrics: Mapping[str, float],
    breaches: list[Breach],
    notes: list[str],
    close_codes: Mapping[int, int],
    error: str | None,
) -> str:
    """The result as aligned ``metric  value  unit`` lines under a header.

    The close codes are among the metrics (``closed_<code>``); ``error`` is the
    reason the run measured nothing, if it did not."""
    config = _config(options, url)
    shown = {k: v for k, v in config.items() if v not in ("", None)}
    header = "fastcomm bench  " + "  ".join(f"{k}={v}" for k, v in shown.items())
    breached = {b.threshold.metric for b in breaches}
    width = max((len(name) for name in metrics), default=10)
    lines = [header, ""]
    for name, value in metrics.items():
        flag = "  << FAIL" if name in breached else ""
        lines.append(f"  {name:<{width}}  {_number(value):>14} {_unit(name):<4}{flag}")
    lines += [f"  note: {note}" for note in notes]
    if error is not None:
        lines.append(f"  NOT MEASURED: {error}")
    return "\n".join(lines)


def render_json(
    options: BenchOptions,
    url: str,
    metrics: Mapping[str, float],
    breaches: list[Breach],
    notes: list[str],
    close_codes: Mapping[int, int],
    error: str | None,
) -> str:
    """The result as one JSON document: config, metrics, ``close_codes`` (code ->
    connections the server closed with it), breaches, notes, ``error`` (why
    the run measured nothing, or null) and ``passed``."""
    document = {
        "config": _config(options, url),
        "metrics": {k: (None if v != v else v) for k, v in metrics.items()},
        "thresholds": [t.text for t in options.fail_if],
        "breaches": [
            {"threshold": b.threshold.text, "metric": b.threshold.metric, "measured": b.measured}
            for b in breaches
        ],
        "close_codes": {str(code): n for code, n in close_codes.items()},
        "notes": notes,
        "error": error,
        "passed": not breaches and error is None,
    }
    return msgspec.json.encode(document).decode()
