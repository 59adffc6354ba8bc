"""Scenario ``idle``: hold N connections and weigh them on the server.

The server's resident memory (``VmRSS``) is read before the first
connection and again once every connection is open and has been quiet for a
second; the difference over the number of connections is the memory per idle
connection. That needs the server's process id: the load generator knows it
when it started the server, otherwise pass ``--server-pid``. Connections are
then held for ``--duration`` seconds (the server's heartbeat keeps running)
and those still open at the end are counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from fastcomm.loadgen.client import BaseListener, Failures, close_all, open_many, server_closes
from fastcomm.loadgen.histogram import Histogram
from fastcomm.loadgen.spec import Scenario, Sync, WorkerResult, WorkerSpec
from fastcomm.loadgen.summary import latency_metrics, merged, total

__all__ = ["SCENARIO"]

_SETTLE = 1.0  # seconds of quiet before memory is read


async def worker(spec: WorkerSpec, sync: Sync) -> WorkerResult:
    hist = Histogram()
    failures = Failures()

    def record(_: BaseListener, seconds: float) -> None:
        hist.record(int(seconds * 1e9))

    sync.watch(lambda: hist.count)
    await sync.phase("ready")
    listeners = await open_many(
        spec.url, BaseListener, spec.conns, encoding=spec.encoding,
        concurrency=spec.concurrency, timeout=spec.timeout, failures=failures, on_open=record,
        headers=spec.headers,
    )  # fmt: skip
    await asyncio.sleep(_SETTLE)
    await sync.phase("held")
    held_from = time.perf_counter()
    await asyncio.sleep(spec.duration)
    alive = sum(
        lst.transport is not None and not lst.transport.is_disconnected for lst in listeners
    )
    seconds = time.perf_counter() - held_from
    await sync.phase("done")
    closes = server_closes(listeners)
    await close_all(listeners)
    return WorkerResult(
        counters={
            "conns": len(listeners), "opened": len(listeners), "alive": alive,
            "seconds": seconds, **failures.counters(), **closes,
        },
        histograms={"connect": hist.to_wire()},
        errors=failures.reasons,
    )  # fmt: skip


def summarize(results: list[WorkerResult], probes: Mapping[str, float]) -> dict[str, float]:
    conns = total(results, "conns")
    connect = latency_metrics(merged(results, "connect"))
    metrics = {
        "conns": conns,
        "failed_conns": total(results, "failed_conns"),
        "alive": total(results, "alive"),
        "dropped": conns - total(results, "alive"),
        "closed_by_server": total(results, "closed_by_server"),
        "held_seconds": max((r.counters.get("seconds", 0.0) for r in results), default=0.0),
        "connect_p99_ms": connect["p99_ms"],
    }
    if "start.rss" in probes and "held.rss" in probes:
        growth = probes["held.rss"] - probes["start.rss"]
        metrics["server_rss_kib"] = probes["held.rss"]
        metrics["server_rss_growth_kib"] = growth
        if conns:
            metrics["rss_per_conn_kib"] = growth / conns
    return metrics


_METRICS = (
    "conns", "failed_conns", "alive", "dropped", "closed_by_server", "held_seconds",
    "connect_p99_ms", "server_rss_kib", "server_rss_growth_kib", "rss_per_conn_kib",
)  # fmt: skip

SCENARIO = Scenario(
    name="idle",
    unit="connections",
    measured="conns",
    phases=("ready", "held", "done"),
    metrics=_METRICS,
    worker=worker,
    summarize=summarize,
)
