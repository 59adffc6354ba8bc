"""Merging worker results into a scenario's metrics."""

from __future__ import annotations

from collections.abc import Mapping

from fastcomm.loadgen.histogram import Histogram
from fastcomm.loadgen.spec import WorkerResult

__all__ = ["cpu_window", "latency_metrics", "merged", "total"]


def total(results: list[WorkerResult], name: str) -> float:
    """Sum of counter ``name`` over every worker (absent counts as 0)."""
    return float(sum(result.counters.get(name, 0.0) for result in results))


def merged(results: list[WorkerResult], name: str) -> Histogram:
    """Histogram ``name`` of every worker, merged."""
    hist = Histogram()
    for result in results:
        wire = result.histograms.get(name)
        if wire:
            hist.merge(Histogram.from_wire(wire))
    return hist


def latency_metrics(hist: Histogram, prefix: str = "") -> dict[str, float]:
    """``p50_ms`` ... ``max_ms``, ``mean_ms`` of a nanosecond histogram, in milliseconds."""
    ms = 1e-6
    return {
        f"{prefix}p50_ms": hist.percentile(50) * ms,
        f"{prefix}p90_ms": hist.percentile(90) * ms,
        f"{prefix}p99_ms": hist.percentile(99) * ms,
        f"{prefix}p999_ms": hist.percentile(99.9) * ms,
        f"{prefix}max_ms": hist.max * ms,
        f"{prefix}mean_ms": hist.mean * ms,
    }


def cpu_window(
    probes: Mapping[str, float], start: str, end: str, count: float, unit: str
) -> dict[str, float]:
    """Server CPU between phases ``start`` and ``end``: ``server_cpu_pct`` (of one
    core) and ``server_cpu_us_per_<unit>``; empty when the server is not local."""
    try:
        cpu = probes[f"{end}.cpu"] - probes[f"{start}.cpu"]
        wall = probes[f"{end}.time"] - probes[f"{start}.time"]
    except KeyError:
        return {}
    metrics = {"server_cpu_pct": 100.0 * cpu / wall if wall > 0 else 0.0}
    if count > 0:
        metrics[f"server_cpu_us_per_{unit}"] = cpu / count * 1e6
    return metrics
