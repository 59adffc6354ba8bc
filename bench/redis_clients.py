"""The load side of ``bench/redis_fanout.py``: subscribers spread over several
servers, one publisher, publications in single steps or bursts.

Two wire protocols: fastcomm's (``subscribe``/``publish`` on a channel) and
Socket.IO's (Engine.IO 4 over WebSocket: ``join`` and ``pub`` events, ``msg``
deliveries). Each publication carries ``t`` (the monotonic clock when sent)
and ``seq`` (the publisher's order); every subscriber checks that ``seq``
never goes back (``out_of_order``) or repeats (``duplicates``), and with
fastcomm also the channel offset. A step waits until every subscriber has
every publication of the step (or ``timeout``: the rest count as lost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
from picows import WSFrame, WSMsgType, WSTransport

from fastcomm.loadgen.client import BaseListener, Failures, close_all, connect_one, open_many
from fastcomm.loadgen.histogram import Histogram

__all__ = ["Load", "Result", "run_load"]

_clock = time.perf_counter_ns
_TEXT = WSMsgType.TEXT
_PAD = "x" * 64


class _Stamp(msgspec.Struct):
    t: int = 0
    seq: int = -1


class _FcPush(msgspec.Struct):
    type: str = ""
    offset: int = 0
    data: _Stamp | bool | int | None = None


_fc_decode = msgspec.json.Decoder(_FcPush).decode
_stamp_decode = msgspec.json.Decoder(_Stamp).decode
_encode = msgspec.json.encode
_SIO_MSG = b'42["msg",'


class Load:
    """What every subscriber saw; ``expect`` deliveries complete the current step."""

    def __init__(self) -> None:
        self.hist = Histogram()
        self.delivered = 0
        self.expect = 0
        self.step: asyncio.Future[None] | None = None
        self.out_of_order = 0
        self.duplicates = 0
        self.offset_breaks = 0
        self.acks = 0
        self.first_seq = 0  # deliveries of earlier publications are not measured

    def got(self, stamp: _Stamp, now: int) -> None:
        if stamp.seq >= self.first_seq:
            self.hist.record(now - stamp.t)
        self.delivered += 1
        if self.delivered >= self.expect and self.step is not None and not self.step.done():
            self.step.set_result(None)


class _Sub(BaseListener):
    __slots__ = ("last", "last_offset", "load")

    def __init__(self, load: Load) -> None:
        super().__init__()
        self.load = load
        self.last = -1
        self.last_offset = 0

    def _order(self, stamp: _Stamp) -> None:
        if stamp.seq < self.last:
            self.load.out_of_order += 1
        elif stamp.seq == self.last:
            self.load.duplicates += 1
        self.last = max(self.last, stamp.seq)


class FastcommSub(_Sub):
    def on_data(self, frame: WSFrame) -> None:
        now = _clock()
        push = _fc_decode(frame.get_payload_as_memoryview())
        if push.type == "message" and type(push.data) is _Stamp:
            self._order(push.data)
            if self.last_offset and push.offset != self.last_offset + 1:
                self.load.offset_breaks += 1
            self.last_offset = push.offset
            self.load.got(push.data, now)
        elif push.type == "subscribed":
            self.load.acks += 1


class SocketioSub(_Sub):
    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        transport.send(_TEXT, b"40")  # connect to namespace "/"

    def on_data(self, frame: WSFrame) -> None:
        now = _clock()
        data = frame.get_payload_as_bytes()
        if data.startswith(_SIO_MSG):
            stamp = _stamp_decode(data[len(_SIO_MSG) : -1])
            self._order(stamp)
            self.load.got(stamp, now)
        elif data == b"2" and self.transport is not None:
            self.transport.send(_TEXT, b"3")  # Engine.IO pong
        elif data.startswith(b"40"):
            self.load.acks += 1  # namespace connected
        elif data.startswith(b"431"):
            self.load.acks += 1  # join acknowledged


class Protocol:
    """How one kind of server is spoken to."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sub: type[_Sub] = SocketioSub if name == "socketio" else FastcommSub
        self.path = "/socket.io/?EIO=4&transport=websocket" if name == "socketio" else "/ws"

    def join(self) -> bytes:
        if self.name == "socketio":
            return b'421["join"]'
        return _encode({"type": "subscribe", "id": 1, "channel": "bench"})

    def publish(self, seq: int) -> bytes:
        data = {"t": _clock(), "seq": seq, "pad": _PAD}
        if self.name == "socketio":
            return b'42["pub",' + _encode(data) + b"]"
        return _encode({"type": "publish", "channel": "bench", "data": data})


class Result(msgspec.Struct):
    mode: str
    publications: int
    deliveries: int
    lost: int
    seconds: float
    out_of_order: int
    duplicates: int
    offset_breaks: int
    p50_ms: float
    p99_ms: float
    window: dict[str, float] = {}


async def _wait(load: Load, want: int, timeout: float) -> None:
    while load.acks < want:
        await asyncio.sleep(0.01)
        timeout -= 0.01
        if timeout <= 0:
            raise RuntimeError(f"only {load.acks} of {want} subscriptions confirmed")


async def run_load(
    protocol: Protocol,
    urls: list[str],
    subscribers: int,
    modes: list[tuple[str, int, float]],
    snapshot: Callable[[], dict[str, float]],
    timeout: float = 5.0,
) -> list[Result]:
    """Subscribe ``subscribers`` connections round-robin over ``urls``, publish from
    one more on ``urls[0]``; for each ``(mode, burst, seconds)`` publish ``burst``
    at a time for ``seconds``. ``snapshot()`` is called around each measured window
    and the difference of its figures is the result's ``window``."""
    load, failures = Load(), Failures()
    subs: list[_Sub] = []
    per = [subscribers // len(urls) + (i < subscribers % len(urls)) for i in range(len(urls))]
    for url, count in zip(urls, per, strict=True):
        subs += await open_many(
            url + protocol.path, lambda: protocol.sub(load), count, encoding="json",
            concurrency=50, timeout=timeout, failures=failures,
        )  # fmt: skip
    if failures.count:
        raise RuntimeError(f"{failures.count} connections failed: {failures.reasons}")
    own = Load()  # what the publisher receives is not measured
    pub = await connect_one(urls[0] + protocol.path, lambda: protocol.sub(own), "json", timeout)
    if protocol.name == "socketio":
        await _wait(load, subscribers, timeout)
        await _wait(own, 1, timeout)
    for sub in [*subs, pub]:
        assert sub.transport is not None
        sub.transport.send(_TEXT, protocol.join())
    await _wait(load, load.acks + subscribers if protocol.name == "socketio" else subscribers, 30)
    seq = 0
    results = []
    for mode, burst, seconds in [("warmup", 1, 1.0), *modes]:
        load.first_seq = seq
        start_delivered, load.hist = load.delivered, Histogram()
        order = (load.out_of_order, load.duplicates, load.offset_breaks)
        before, started, lost, sent = snapshot(), time.perf_counter(), 0, 0
        while time.perf_counter() - started < seconds:
            load.expect = load.delivered + burst * subscribers
            load.step = asyncio.get_running_loop().create_future()
            assert pub.transport is not None
            for _ in range(burst):
                pub.transport.send(_TEXT, protocol.publish(seq))
                seq += 1
            sent += burst
            try:
                await asyncio.wait_for(load.step, timeout)
            except TimeoutError:
                lost += load.expect - load.delivered
                load.delivered = load.expect
        elapsed = time.perf_counter() - started
        after = snapshot()
        hist = load.hist
        results.append(Result(
            mode, sent, load.delivered - start_delivered - lost, lost, elapsed,
            load.out_of_order - order[0], load.duplicates - order[1],
            load.offset_breaks - order[2], hist.percentile(50) / 1e6, hist.percentile(99) / 1e6,
            {k: after[k] - before.get(k, 0.0) for k in after},
        ))  # fmt: skip
    await close_all([*subs, pub])
    return results[1:]
