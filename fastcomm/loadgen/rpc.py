"""Scenario ``rpc``: request/reply over N connections.

Closed loop (default): each connection keeps one request in flight and sends
the next as soon as the reply arrives. Open loop (``--rate R``): requests are
sent on a fixed schedule of R per second over all connections, and latency
is measured from each request's *scheduled* time, so a stalled server shows
up in the percentiles instead of silently lowering the send rate.

The request is the ``--message`` template (default ``{"type":"ping"}``) with
an ``id`` and, with ``--size N``, a ``data`` string of N bytes. Every reply
is timed; a reply of type ``error`` (or one that is not a message) counts as
an error. A ``welcome`` is skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from picows import WSFrame

from fastcomm.loadgen.client import (
    DECODE_ERRORS,
    BaseListener,
    Failures,
    close_all,
    decoder_for,
    encode_for,
    frame_type_for,
    open_many,
    server_closes,
)
from fastcomm.loadgen.histogram import Histogram
from fastcomm.loadgen.spec import Scenario, Sync, WorkerResult, WorkerSpec
from fastcomm.loadgen.summary import cpu_window, latency_metrics, merged, total

__all__ = ["SCENARIO", "build_request"]

_clock = time.perf_counter_ns


class _State:
    __slots__ = ("closed_loop", "done", "errors", "hist", "recorded", "recording", "running")

    def __init__(self, closed_loop: bool) -> None:
        self.closed_loop = closed_loop
        self.running = False
        self.recording = False
        self.done = 0
        self.recorded = 0
        self.errors = 0
        self.hist = Histogram()


class _RpcListener(BaseListener):
    __slots__ = ("decode", "frame_type", "request", "sent", "state")

    def __init__(self, state: _State, request: bytes, spec: WorkerSpec) -> None:
        super().__init__()
        self.state = state
        self.request = request
        self.decode = decoder_for(spec.encoding)
        self.frame_type = frame_type_for(spec.encoding)
        self.sent: deque[int] = deque()

    def fire(self, stamp: int) -> None:
        """Send one request, timed from ``stamp`` (perf_counter_ns)."""
        transport = self.transport
        if transport is None or self.closed_by_server is not None:
            return
        self.sent.append(stamp)
        transport.send(self.frame_type, self.request)

    def on_data(self, frame: WSFrame) -> None:
        now = _clock()
        try:
            kind = self.decode(frame.get_payload_as_memoryview()).type
        except DECODE_ERRORS:
            kind = ""
        if kind == "welcome" or not self.sent:
            return
        start = self.sent.popleft()
        state = self.state
        state.done += 1
        if state.recording:
            state.hist.record(now - start)
            state.recorded += 1
            if kind == "error" or not kind:
                state.errors += 1
        if state.closed_loop and state.running:
            self.fire(_clock())


def build_request(message: Mapping[str, Any] | None, size: int, rid: int) -> dict[str, Any]:
    """The request object: the template with ``id`` and, if ``size``, ``data``."""
    template = dict(message or {"type": "ping"})
    request: dict[str, Any] = {"type": template.pop("type", "ping"), "id": rid}
    if size and "data" not in template:
        template["data"] = "x" * size
    request.update(template)
    return request


async def _pace(listeners: list[_RpcListener], state: _State, rate: float) -> None:
    """Open loop: fire requests round-robin on a fixed schedule of ``rate`` per second."""
    period = 1e9 / rate
    start, sent, count = _clock(), 0, len(listeners)
    while state.running:
        due = int((_clock() - start) / period)
        while sent < due:
            listeners[sent % count].fire(start + int(sent * period))
            sent += 1
        await asyncio.sleep(0.001)


async def worker(spec: WorkerSpec, sync: Sync) -> WorkerResult:
    state = _State(closed_loop=spec.rate <= 0)
    encode = encode_for(spec.encoding)
    failures = Failures()
    first_id = spec.index * spec.conns + 1
    ids = iter(range(first_id, first_id + spec.conns))

    def factory() -> _RpcListener:
        return _RpcListener(state, encode(build_request(spec.message, spec.size, next(ids))), spec)

    listeners = await open_many(
        spec.url, factory, spec.conns, encoding=spec.encoding, concurrency=spec.concurrency,
        timeout=spec.timeout, failures=failures, headers=spec.headers,
    )  # fmt: skip
    sync.watch(lambda: state.done)
    await sync.phase("ready")
    state.running = True
    pacer = None
    if listeners:
        if state.closed_loop:
            for listener in listeners:
                listener.fire(_clock())
        else:
            pacer = asyncio.get_running_loop().create_task(_pace(listeners, state, spec.rate))
    await asyncio.sleep(spec.warmup)
    await sync.phase("measure")
    state.recording, started, cpu = True, time.perf_counter(), time.process_time()
    await asyncio.sleep(spec.duration)
    state.recording = False
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await sync.phase("done")
    state.running = False
    if pacer is not None:
        pacer.cancel()
    deadline = time.monotonic() + 2.0
    while any(lst.sent for lst in listeners) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    unanswered = sum(len(lst.sent) for lst in listeners)
    closes = server_closes(listeners)
    await close_all(listeners)
    return WorkerResult(
        counters={
            "requests": state.recorded, "errors": state.errors, "seconds": seconds,
            "client_cpu": cpu, "conns": len(listeners), "opened": len(listeners),
            "unanswered": unanswered, **failures.counters(), **closes,
        },
        histograms={"latency": state.hist.to_wire()},
        errors=failures.reasons,
    )  # fmt: skip


def summarize(results: list[WorkerResult], probes: Mapping[str, float]) -> dict[str, float]:
    requests = total(results, "requests")
    seconds = max(total(results, "seconds") / len(results), 1e-9)
    metrics = {
        "throughput": requests / seconds,
        "requests": requests,
        "errors": total(results, "errors"),
        "unanswered": total(results, "unanswered"),
        "conns": total(results, "conns"),
        "failed_conns": total(results, "failed_conns"),
        "closed_by_server": total(results, "closed_by_server"),
        **latency_metrics(merged(results, "latency")),
        "seconds": seconds,
        "client_cpu_pct": 100.0 * total(results, "client_cpu") / seconds,
    }
    metrics.update(cpu_window(probes, "measure", "done", requests, "req"))
    return metrics


_METRICS: tuple[str, ...] = (
    "throughput", "requests", "errors", "unanswered", "conns", "failed_conns",
    "closed_by_server", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
    "seconds", "client_cpu_pct", "server_cpu_pct", "server_cpu_us_per_req",
)  # fmt: skip

SCENARIO = Scenario(
    name="rpc",
    unit="replies",
    measured="requests",
    phases=("ready", "measure", "done"),
    metrics=_METRICS,
    worker=worker,
    summarize=summarize,
)
