"""Unit tests of the hub: encode once per codec, slow subscribers, membership, release."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import msgspec
import pytest

from fastcomm.channels.hub import Catchup, Hub
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.recovery import catch_up
from fastcomm.protocol.channel_messages import Join, Publication
from fastcomm.sessions.session import Session

H = {"history_size": 100, "history_ttl": 60.0}


class CountingCodec:
    """Stands for a Codec; counts encodes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.binary = name == "msgpack"
        self.calls = 0

    def encode(self, msg: Any) -> bytes:
        self.calls += 1
        return msgspec.msgpack.encode(msg) if self.binary else msgspec.json.encode(msg)

    def decode(self, data: bytes) -> Any:
        return msgspec.msgpack.decode(data) if self.binary else msgspec.json.decode(data)


class FakeConn:
    """Stands for a Connection: records what is sent; closes itself after ``capacity`` sends."""

    def __init__(self, codec: CountingCodec, capacity: int | None = None, sid: str = "s") -> None:
        self.codec = codec
        self.capacity = capacity
        self.closed = False
        self.frames: list[bytes] = []
        self.session = Session(sid, "u-" + sid, None, "token-" + sid)

    @property
    def session_id(self) -> str:
        return self.session.id

    @property
    def user(self) -> str | None:
        return self.session.user

    @property
    def meta(self) -> Any:
        return None

    def send_encoded(self, data: bytes) -> bool:
        if self.closed:
            return False
        if self.capacity is not None and len(self.frames) >= self.capacity:
            self.closed = True  # what Connection does to a slow consumer (4008)
            return False
        self.frames.append(data)
        return True

    def send(self, msg: Any) -> bool:
        return self.send_encoded(self.codec.encode(msg))

    def messages(self) -> list[dict[str, Any]]:
        return [self.codec.decode(f) for f in self.frames]

    def offsets(self) -> list[int]:
        return [m["offset"] for m in self.messages() if m["type"] == "message"]


class Tasks:
    """The ``spawn`` of a hub under test: keeps the tasks to await them."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def __call__(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    async def settle(self) -> None:
        while self.tasks:
            await self.tasks.pop(0)


async def subscribe(hub: Hub, conn: Any, channel: str = "c") -> Catchup:
    entry = Catchup(conn)
    assert await catch_up(hub, entry, channel, 1, None)
    return entry


async def test_publication_is_encoded_once_per_codec() -> None:
    broker, spawn = MemoryBroker(), Tasks()
    hub = Hub(broker, spawn)
    json_codec, mp_codec = CountingCodec("json"), CountingCodec("msgpack")
    conns = [FakeConn(json_codec, sid=f"j{i}") for i in range(3)]
    conns += [FakeConn(mp_codec, sid=f"m{i}") for i in range(2)]
    for conn in conns:
        await subscribe(hub, conn)
    json_codec.calls = mp_codec.calls = 0
    for i in range(4):
        await broker.publish("c", {"n": i}, **H)
    assert (json_codec.calls, mp_codec.calls) == (4, 4)
    for conn in conns:
        assert conn.offsets() == [1, 2, 3, 4]
        first = conn.messages()[1]
        assert first == {
            "type": "message",
            "channel": "c",
            "offset": 1,
            "epoch": first["epoch"],
            "data": {"n": 0},
        }


async def test_join_and_leave_events_reach_every_subscriber_once_per_codec() -> None:
    broker = MemoryBroker()
    hub = Hub(broker, Tasks())
    codec = CountingCodec("json")
    conns = [FakeConn(codec, sid=str(i)) for i in range(3)]
    for conn in conns:
        await subscribe(hub, conn)
    codec.calls = 0
    await broker.publish_event("c", Join("c", "x", "u"))
    assert codec.calls == 1
    for conn in conns:
        assert conn.messages()[-1] == {"type": "join", "channel": "c", "session": "x", "user": "u"}


async def test_slow_subscriber_does_not_block_others_and_keeps_its_position() -> None:
    broker = MemoryBroker()
    hub = Hub(broker, Tasks())
    codec = CountingCodec("json")
    fast = FakeConn(codec, sid="fast")
    slow = FakeConn(codec, capacity=4, sid="slow")  # subscribed + 3 publications fit
    await subscribe(hub, fast)
    await subscribe(hub, slow)
    for i in range(10):
        await broker.publish("c", i, **H)
    assert fast.offsets() == list(range(1, 11))
    assert slow.offsets() == [1, 2, 3]
    epoch = (await broker.position("c")).epoch
    assert hub.leave(slow, "c") == ((epoch, 3), True)
    assert hub.leave(fast, "c") == ((epoch, 10), True)


async def test_leave_releases_the_broker_subscription_when_empty() -> None:
    broker, spawn = MemoryBroker(), Tasks()
    hub = Hub(broker, spawn)
    a, b = FakeConn(CountingCodec("json"), sid="a"), FakeConn(CountingCodec("json"), sid="b")
    await subscribe(hub, a)
    await subscribe(hub, b)
    assert hub.count() == 1 and hub.subscribers("c") == 2
    hub.leave(a, "c")
    await spawn.settle()
    assert "c" in broker._subs and hub.subscribers("c") == 1
    assert hub.leave(a, "c") == (None, False)  # not there any more
    hub.leave(b, "c")
    await spawn.settle()
    assert hub.count() == 0 and "c" not in broker._subs
    await broker.publish("c", 1, **H)
    assert b.offsets() == []


async def test_rejoin_before_release_runs_keeps_the_subscription() -> None:
    broker, spawn = MemoryBroker(), Tasks()
    hub = Hub(broker, spawn)
    a, b = FakeConn(CountingCodec("json"), sid="a"), FakeConn(CountingCodec("json"), sid="b")
    await subscribe(hub, a)
    hub.leave(a, "c")  # release scheduled, not run yet
    await subscribe(hub, b)
    await spawn.settle()
    await broker.publish("c", 1, **H)
    assert b.offsets() == [1]
    assert "c" in broker._subs


async def test_rejoin_after_release_resubscribes() -> None:
    broker, spawn = MemoryBroker(), Tasks()
    hub = Hub(broker, spawn)
    a = FakeConn(CountingCodec("json"), sid="a")
    await subscribe(hub, a, "c")
    hub.leave(a, "c")
    await spawn.settle()
    a.session.positions.clear()
    await subscribe(hub, a, "c")
    await broker.publish("c", 1, **H)
    assert a.offsets() == [1]


class FailingBroker(MemoryBroker):
    async def subscribe(self, channel: str, deliver: Any) -> None:
        await asyncio.sleep(0)
        raise ConnectionError("backend down")


async def test_failed_broker_subscription_fails_every_waiting_entry() -> None:
    hub = Hub(FailingBroker(), Tasks())
    a, b = FakeConn(CountingCodec("json"), sid="a"), FakeConn(CountingCodec("json"), sid="b")
    first = asyncio.ensure_future(hub.enter("c", Catchup(a)))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(hub.enter("c", Catchup(b)))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert hub.count() == 0


async def test_position_of_an_entry_leaving_before_subscribed_is_unknown() -> None:
    broker = MemoryBroker()
    hub = Hub(broker, Tasks())
    a = FakeConn(CountingCodec("json"), sid="a")
    await hub.enter("c", Catchup(a))
    assert hub.leave(a, "c") == (None, False)
    restored = Catchup(a, ("E", 7))
    await hub.enter("c", restored)
    assert hub.leave(a, "c") == (("E", 7), False)


@pytest.mark.parametrize("late", [0, 1, 3])
async def test_late_deliveries_already_sent_from_history_are_skipped(late: int) -> None:
    """A networked broker may deliver a publication after a reader saw it in history."""
    hub = Hub(MemoryBroker(), Tasks())
    a = FakeConn(CountingCodec("json"), sid="a")
    entry = Catchup(a)
    await hub.enter("c", entry)
    entry.epoch, entry.last = "E", 5  # its history read went up to 5; the node saw nothing yet
    hub.go_live("c", entry)
    assert hub.channels["c"].groups  # live at once: no other subscriber to keep in step
    for n in range(6 - late, 7):
        hub.deliver(Publication("c", n, "E", n))
    assert a.offsets() == [6]


async def test_entry_ahead_of_live_subscribers_filters_until_they_meet() -> None:
    hub = Hub(MemoryBroker(), Tasks())
    live, late = FakeConn(CountingCodec("json"), sid="a"), FakeConn(CountingCodec("json"), sid="b")
    first = Catchup(live)
    await hub.enter("c", first)
    first.epoch, first.last = "E", 3
    hub.go_live("c", first)
    second = Catchup(late)
    await hub.enter("c", second)
    second.epoch, second.last = "E", 5  # its history already had 4 and 5
    hub.go_live("c", second)
    assert late in hub.channels["c"].pending
    for n in range(4, 8):
        hub.deliver(Publication("c", n, "E", n))
    assert live.offsets() == [4, 5, 6, 7]
    assert late.offsets() == [6, 7]
    assert late not in hub.channels["c"].pending  # caught up at 5: live since


async def test_events_during_catch_up_are_buffered_then_flushed_without_duplicates() -> None:
    hub = Hub(MemoryBroker(), Tasks())
    a = FakeConn(CountingCodec("json"), sid="a")
    entry = Catchup(a)
    await hub.enter("c", entry)
    for n in (1, 2, 3):
        hub.deliver(Publication("c", n, "E", n))
    hub.deliver(Join("c", "x", None))
    assert a.frames == []  # buffered
    entry.epoch, entry.last = "E", 2  # history covered up to 2
    hub.go_live("c", entry)
    assert [m["type"] for m in a.messages()] == ["message", "join"]
    assert a.offsets() == [3]
    hub.deliver(Publication("c", 4, "E", 4))
    assert a.offsets() == [3, 4]
