"""Scenario ``connect``: a connection storm.

Every worker opens its share of ``--conns`` connections at once (at most
``--concurrency`` handshakes in flight), or at ``--rate`` connections per
second over all workers. A connection's time runs from the start of the TCP
connect to the end of the WebSocket upgrade. Connections are closed after
the storm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from fastcomm.loadgen.client import (
    BaseListener,
    Failures,
    close_all,
    connect_one,
    open_many,
    server_closes,
)
from fastcomm.loadgen.histogram import Histogram
from fastcomm.loadgen.spec import Scenario, Sync, WorkerResult, WorkerSpec
from fastcomm.loadgen.summary import cpu_window, latency_metrics, merged, total

__all__ = ["SCENARIO"]


async def _paced(spec: WorkerSpec, hist: Histogram, failures: Failures) -> list[BaseListener]:
    """Start one connection every ``1 / rate`` seconds; wait for all of them."""
    opened: list[BaseListener] = []

    async def one() -> None:
        start = time.perf_counter_ns()
        try:
            listener = await connect_one(
                spec.url, BaseListener, spec.encoding, spec.timeout, spec.headers
            )
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none raised
            failures.add(exc)
            return
        hist.record(time.perf_counter_ns() - start)
        opened.append(listener)

    loop = asyncio.get_running_loop()
    tasks = []
    started = loop.time()
    for n in range(spec.conns):
        delay = started + n / spec.rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one()))
    await asyncio.gather(*tasks)
    return opened


async def worker(spec: WorkerSpec, sync: Sync) -> WorkerResult:
    hist = Histogram()
    failures = Failures()
    sync.watch(lambda: hist.count)
    await sync.phase("ready")
    started, cpu = time.perf_counter(), time.process_time()
    if spec.rate > 0:
        listeners = await _paced(spec, hist, failures)
    else:

        def record(_: BaseListener, seconds: float) -> None:
            hist.record(int(seconds * 1e9))

        listeners = await open_many(
            spec.url, BaseListener, spec.conns, encoding=spec.encoding,
            concurrency=spec.concurrency, timeout=spec.timeout, failures=failures, on_open=record,
            headers=spec.headers,
        )  # fmt: skip
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await sync.phase("done")
    closes = server_closes(listeners)
    await close_all(listeners)
    return WorkerResult(
        counters={
            "conns": len(listeners),
            "opened": len(listeners),
            "seconds": seconds,
            "client_cpu": cpu,
            **failures.counters(),
            **closes,
        },
        histograms={"connect": hist.to_wire()},
        errors=failures.reasons,
    )


def summarize(results: list[WorkerResult], probes: Mapping[str, float]) -> dict[str, float]:
    conns = total(results, "conns")
    seconds = max((r.counters.get("seconds", 0.0) for r in results), default=0.0)
    metrics = {
        "conns": conns,
        "failed_conns": total(results, "failed_conns"),
        "closed_by_server": total(results, "closed_by_server"),
        "seconds": seconds,
        "connect_rate": conns / seconds if seconds > 0 else 0.0,
        **latency_metrics(merged(results, "connect")),
        "client_cpu_pct": 100.0 * total(results, "client_cpu") / seconds if seconds else 0.0,
    }
    metrics.update(cpu_window(probes, "ready", "done", conns, "conn"))
    return metrics


_METRICS = (
    "conns", "failed_conns", "closed_by_server", "seconds", "connect_rate", "p50_ms",
    "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms", "client_cpu_pct", "server_cpu_pct",
    "server_cpu_us_per_conn",
)  # fmt: skip

SCENARIO = Scenario(
    name="connect",
    unit="connections",
    measured="conns",
    phases=("ready", "done"),
    metrics=_METRICS,
    worker=worker,
    summarize=summarize,
)
