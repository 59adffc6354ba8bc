"""Scenario ``fanout``: one publisher, N subscribers of one channel.

``--conns`` subscribers join the channel; one extra connection (in the first
worker) publishes ``--rate`` publications per second (default 50) after a
warmup, for ``--duration`` seconds. Each publication carries its send time
(the system-wide monotonic clock, so workers on this host agree), and every
delivery is timed. ``lost`` is publications x subscribers minus deliveries.

``--fanout-mode channel`` uses the protocol's ``subscribe``/``publish`` (the
publisher subscribes too, as fastcomm requires without a publish hook);
``app`` uses the bundled bench app's ``bench_join``/``bench_publish`` (for a
server without channels); ``auto`` (default) tries ``channel`` and falls back
to ``app`` when the server answers ``unknown_type``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from picows import WSFrame

from fastcomm.loadgen.client import (
    DECODE_ERRORS,
    BaseListener,
    Failures,
    close_all,
    connect_one,
    decoder_for,
    encode_for,
    frame_type_for,
    open_many,
    server_closes,
)
from fastcomm.loadgen.histogram import Histogram
from fastcomm.loadgen.spec import Scenario, Sync, WorkerResult, WorkerSpec
from fastcomm.loadgen.summary import cpu_window, latency_metrics, merged, total

__all__ = ["SCENARIO"]

_clock = time.perf_counter_ns


class _Stamp(msgspec.Struct):
    t: int = 0
    seq: int = -1


class _Push(msgspec.Struct):
    type: str = ""
    code: str = ""
    data: _Stamp | bool | int | None = None  # a publication, or the reply to a join


class _State:
    __slots__ = ("acks", "delivered", "hist", "last", "refusals")

    def __init__(self) -> None:
        self.hist = Histogram()
        self.delivered = 0  # every publication received, warmup included (progress)
        self.last = 0  # clock of the last delivery
        self.acks = 0
        self.refusals: list[str] = []


class _Subscriber(BaseListener):
    __slots__ = ("decode", "state")

    def __init__(self, state: _State, encoding: str) -> None:
        super().__init__()
        self.state = state
        self.decode = decoder_for(encoding, _Push)

    def on_data(self, frame: WSFrame) -> None:
        now = _clock()
        try:
            push = self.decode(frame.get_payload_as_memoryview())
        except DECODE_ERRORS:
            return
        state = self.state
        kind = push.type
        if kind == "message":
            state.delivered += 1
            state.last = now
            stamp = push.data
            if type(stamp) is _Stamp and stamp.seq >= 0:
                state.hist.record(now - stamp.t)
        elif kind == "subscribed" or kind == "result":
            state.acks += 1
        elif kind == "error":
            state.refusals.append(push.code)


async def _subscribe(listeners: list[_Subscriber], spec: WorkerSpec, mode: str) -> None:
    """Send every subscription and wait (bounded) until each is answered."""
    if not listeners:
        return
    state = listeners[0].state
    acks, refusals = state.acks, len(state.refusals)
    encode, frame = encode_for(spec.encoding), frame_type_for(spec.encoding)
    request: dict[str, Any] = {"type": "subscribe", "id": 1, "channel": spec.channel}
    data = encode(request if mode == "channel" else {"type": "bench_join", "id": 1})
    for listener in listeners:
        if listener.transport is not None:
            listener.transport.send(frame, data)
    deadline = time.monotonic() + spec.timeout
    while time.monotonic() < deadline:
        if state.acks - acks + len(state.refusals) - refusals >= len(listeners):
            return
        await asyncio.sleep(0.01)


async def _mode(listeners: list[_Subscriber], spec: WorkerSpec) -> str:
    if spec.fanout_mode != "auto":
        return spec.fanout_mode
    state = listeners[0].state
    await _subscribe(listeners[:1], spec, "channel")
    if state.refusals and state.refusals[-1] == "unknown_type":
        state.refusals.pop()
        return "app"
    return "channel"


async def _publish(pub: BaseListener, spec: WorkerSpec, mode: str, box: list[int]) -> None:
    """Publish at ``spec.rate`` per second; ``box[0]`` is the next measured sequence
    number, or -1 during warmup. ``box[1]`` counts measured publications."""
    encode, frame = encode_for(spec.encoding), frame_type_for(spec.encoding)
    pad = "x" * spec.size
    period = 1.0 / spec.rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while pub.transport is not None and not pub.transport.is_disconnected:
        seq = box[0]
        data = {"t": _clock(), "seq": seq, "pad": pad}
        if mode == "channel":
            message = {"type": "publish", "channel": spec.channel, "data": data}
        else:
            message = {"type": "bench_publish", "data": data}
        pub.transport.send(frame, encode(message))
        if seq >= 0:
            box[0], box[1] = seq + 1, box[1] + 1
        next_at += period
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def worker(spec: WorkerSpec, sync: Sync) -> WorkerResult:
    state, failures = _State(), Failures()
    subs = await open_many(
        spec.url, lambda: _Subscriber(state, spec.encoding), spec.conns, encoding=spec.encoding,
        concurrency=spec.concurrency, timeout=spec.timeout, failures=failures,
        headers=spec.headers,
    )  # fmt: skip
    mode = "channel"
    if subs:
        mode = await _mode(subs, spec)
        # In auto mode the probe already subscribed the first connection, if it worked.
        probed = spec.fanout_mode == "auto" and mode == "channel"
        await _subscribe(subs[1:] if probed else subs, spec, mode)
    publisher: _Subscriber | None = None
    if spec.index == 0:
        # The publisher has its own state: what it receives is not a measured delivery.
        own = _State()
        try:
            publisher = await connect_one(
                spec.url, lambda: _Subscriber(own, spec.encoding), spec.encoding, spec.timeout,
                spec.headers,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - counted like any failed connection
            failures.add(exc)
        if publisher is not None and mode == "channel":
            # Without a publish hook, fastcomm lets only subscribers publish.
            await _subscribe([publisher], spec, mode)
    sync.watch(lambda: state.delivered)
    await sync.phase("ready")
    box = [-1, 0]
    task = None
    if publisher is not None:
        task = asyncio.get_running_loop().create_task(_publish(publisher, spec, mode, box))
    await asyncio.sleep(spec.warmup)
    await sync.phase("measure")
    box[0], started = 0, time.perf_counter()
    await asyncio.sleep(spec.duration)
    if task is not None:
        task.cancel()
    seconds = time.perf_counter() - started
    await sync.phase("done")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _clock() - state.last < 500_000_000:
        await asyncio.sleep(0.05)
    await sync.phase("drained")
    everyone = [*subs, *([publisher] if publisher is not None else [])]
    closes = server_closes(everyone)
    await close_all(everyone)
    return WorkerResult(
        counters={
            "subscribers": min(state.acks, len(subs)), "publications": box[1],
            "deliveries": state.hist.count, "opened": len(everyone),
            "refused": len(state.refusals), "seconds": seconds,
            "app_mode": 1.0 if mode == "app" else 0.0, **failures.counters(), **closes,
        },
        histograms={"latency": state.hist.to_wire()},
        errors=failures.reasons + [f"subscribe refused: {code}" for code in state.refusals[:3]],
    )  # fmt: skip


def summarize(results: list[WorkerResult], probes: Mapping[str, float]) -> dict[str, float]:
    subscribers, deliveries = total(results, "subscribers"), total(results, "deliveries")
    publications = total(results, "publications")
    seconds = max((r.counters.get("seconds", 0.0) for r in results), default=0.0)
    metrics = {
        "subscribers": subscribers,
        "publications": publications,
        "deliveries": deliveries,
        "lost": max(0.0, publications * subscribers - deliveries),
        "throughput": deliveries / seconds if seconds > 0 else 0.0,
        "failed_conns": total(results, "failed_conns"),
        "refused": total(results, "refused"),
        "closed_by_server": total(results, "closed_by_server"),
        **latency_metrics(merged(results, "latency")),
    }
    metrics.update(cpu_window(probes, "measure", "drained", deliveries, "delivery"))
    return metrics


_METRICS = (
    "subscribers", "publications", "deliveries", "lost", "throughput", "failed_conns",
    "refused", "closed_by_server", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
    "mean_ms", "server_cpu_pct", "server_cpu_us_per_delivery",
)  # fmt: skip

SCENARIO = Scenario(
    name="fanout",
    unit="deliveries",
    measured="deliveries",
    phases=("ready", "measure", "done", "drained"),
    metrics=_METRICS,
    worker=worker,
    summarize=summarize,
)
