"""Unit tests of the hub: encode once per codec, slow subscribers, membership, release.

The subscribers are real connections on a real node (in-memory transport);
the hub under test is a separate one, so that each test picks its broker and
runs the hub's background work itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from fastcomm.channels.hub import Hub, Joiner
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.subscriptions import bring_live
from fastcomm.node.node import Node
from fastcomm.protocol.channel_messages import Join, Publication
from fastcomm.sessions.connection import Connection
from fastcomm.transports.memory import MemoryTransport
from tests.unit.memory import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    EncodeCounter,
    H,
    make_node,
    offsets,
    open_conn,
)


class Tasks:
    """The ``spawn`` of a hub under test: keeps the tasks to await them."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def __call__(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    async def settle(self) -> None:
        while self.tasks:
            await self.tasks.pop(0)


async def subscribe(hub: Hub, conn: Connection, channel: str = "c") -> Joiner:
    """Bring ``conn`` live on ``channel`` as a ``subscribe`` (id 1) does."""
    entry = Joiner(conn)
    assert await bring_live(hub, entry, channel, 1, None)
    return entry


async def conns(node: Node, n: int, subprotocol: str = JSON_SUBPROTOCOL) -> list[Connection]:
    return [(await open_conn(node, subprotocol))[0] for _ in range(n)]


def wire(conn: Connection) -> MemoryTransport:
    transport = conn.transport
    assert isinstance(transport, MemoryTransport)
    return transport


async def test_publication_is_encoded_once_per_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    broker, spawn, node = MemoryBroker(), Tasks(), make_node()
    hub = Hub(broker, spawn)
    subscribers = await conns(node, 3) + await conns(node, 2, MSGPACK_SUBPROTOCOL)
    for conn in subscribers:
        await subscribe(hub, conn)
    json_enc = EncodeCounter(monkeypatch, node.codecs[JSON_SUBPROTOCOL])
    mp_enc = EncodeCounter(monkeypatch, node.codecs[MSGPACK_SUBPROTOCOL])
    for i in range(4):
        await broker.publish("c", {"n": i}, **H)
    assert (json_enc.calls, mp_enc.calls) == (4, 4)
    for conn in subscribers:
        assert offsets(wire(conn)) == [1, 2, 3, 4]
        sent = wire(conn).messages()
        assert sent[0]["type"] == "subscribed"
        first = sent[1]
        assert first == {
            "type": "message",
            "channel": "c",
            "offset": 1,
            "epoch": first["epoch"],
            "data": {"n": 0},
        }
    assert node.stats.messages_out == 5 * (1 + 1 + 4)  # welcome, subscribed, publications


async def test_join_and_leave_events_reach_every_subscriber_once_per_codec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, node = MemoryBroker(), make_node()
    hub = Hub(broker, Tasks())
    subscribers = await conns(node, 3)
    for conn in subscribers:
        await subscribe(hub, conn)
    encodes = EncodeCounter(monkeypatch, node.codecs[JSON_SUBPROTOCOL])
    await broker.publish_event("c", Join("c", "x", "u"))
    assert encodes.calls == 1
    for conn in subscribers:
        assert wire(conn).messages()[-1] == {
            "type": "join",
            "channel": "c",
            "session": "x",
            "user": "u",
        }


async def test_slow_subscriber_does_not_block_others_and_keeps_its_position() -> None:
    broker, node = MemoryBroker(), make_node()
    hub = Hub(broker, Tasks())
    fast, slow = await conns(node, 2)
    await subscribe(hub, fast)
    await subscribe(hub, slow)
    for i in range(3):
        await broker.publish("c", i, **H)
    # The peer stops reading: the transport pauses the connection and its buffer is full.
    slow.paused = True
    wire(slow).pending = node.config.max_outbound_buffer
    for i in range(3, 10):
        await broker.publish("c", i, **H)
    assert offsets(wire(fast)) == list(range(1, 11))
    assert offsets(wire(slow)) == [1, 2, 3]
    assert wire(slow).closed_with == (4008, b"slow consumer")
    assert slow.closed and not fast.closed and node.stats.slow_consumers == 1
    epoch = (await broker.position("c")).epoch
    assert hub.leave(slow, "c") == ((epoch, 3), True)
    assert hub.leave(fast, "c") == ((epoch, 10), True)


async def test_leave_releases_the_broker_subscription_when_empty() -> None:
    broker, spawn, node = MemoryBroker(), Tasks(), make_node()
    hub = Hub(broker, spawn)
    a, b = await conns(node, 2)
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
    assert offsets(wire(b)) == []


async def test_rejoin_before_release_runs_keeps_the_subscription() -> None:
    broker, spawn, node = MemoryBroker(), Tasks(), make_node()
    hub = Hub(broker, spawn)
    a, b = await conns(node, 2)
    await subscribe(hub, a)
    hub.leave(a, "c")  # release scheduled, not run yet
    await subscribe(hub, b)
    await spawn.settle()
    await broker.publish("c", 1, **H)
    assert offsets(wire(b)) == [1]
    assert offsets(wire(a)) == []
    assert "c" in broker._subs


async def test_rejoin_after_release_resubscribes() -> None:
    broker, spawn, node = MemoryBroker(), Tasks(), make_node()
    hub = Hub(broker, spawn)
    (a,) = await conns(node, 1)
    await subscribe(hub, a, "c")
    hub.leave(a, "c")
    await spawn.settle()
    assert "c" not in broker._subs
    await subscribe(hub, a, "c")
    assert "c" in broker._subs
    await broker.publish("c", 1, **H)
    assert offsets(wire(a)) == [1]


class FailingBroker(MemoryBroker):
    """Its handles fail every subscribe (a backend that went down)."""

    def start(self, deliver: Any, **node: Any) -> Any:
        handle = super().start(deliver, **node)

        async def subscribe(channel: str) -> None:
            await asyncio.sleep(0)
            raise ConnectionError("backend down")

        handle.subscribe = subscribe  # type: ignore[method-assign]
        return handle


async def test_failed_broker_subscription_fails_every_waiting_entry() -> None:
    hub = Hub(FailingBroker(), Tasks())
    a, b = await conns(make_node(), 2)
    first = asyncio.ensure_future(hub.enter("c", Joiner(a)))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(hub.enter("c", Joiner(b)))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert hub.count() == 0


async def test_position_of_an_entry_leaving_before_subscribed_is_unknown() -> None:
    hub = Hub(MemoryBroker(), Tasks())
    (a,) = await conns(make_node(), 1)
    await hub.enter("c", Joiner(a))
    assert hub.leave(a, "c") == (None, False)
    restored = Joiner(a, ("E", 7))
    await hub.enter("c", restored)
    assert hub.leave(a, "c") == (("E", 7), False)


@pytest.mark.parametrize("late", [0, 1, 3])
async def test_late_deliveries_already_sent_from_history_are_skipped(late: int) -> None:
    """A networked broker may deliver a publication after a reader saw it in history."""
    hub = Hub(MemoryBroker(), Tasks())
    (a,) = await conns(make_node(), 1)
    entry = Joiner(a)
    await hub.enter("c", entry)
    entry.epoch, entry.last = "E", 5  # its history read went up to 5; the node saw nothing yet
    hub.go_live("c", entry)
    assert hub.channels["c"].groups  # live at once: no other subscriber to keep in step
    for n in range(6 - late, 7):
        hub.deliver(Publication("c", n, "E", n))
    assert offsets(wire(a)) == [6]


async def test_entry_ahead_of_live_subscribers_filters_until_they_meet() -> None:
    hub = Hub(MemoryBroker(), Tasks())
    live, late = await conns(make_node(), 2)
    first = Joiner(live)
    await hub.enter("c", first)
    first.epoch, first.last = "E", 3
    hub.go_live("c", first)
    second = Joiner(late)
    await hub.enter("c", second)
    second.epoch, second.last = "E", 5  # its history already had 4 and 5
    hub.go_live("c", second)
    assert late in hub.channels["c"].pending
    for n in range(4, 8):
        hub.deliver(Publication("c", n, "E", n))
    assert offsets(wire(live)) == [4, 5, 6, 7]
    assert offsets(wire(late)) == [6, 7]
    assert late not in hub.channels["c"].pending  # caught up at 5: live since


async def test_events_during_catch_up_are_buffered_then_flushed_without_duplicates() -> None:
    hub = Hub(MemoryBroker(), Tasks())
    (a,) = await conns(make_node(), 1)
    entry = Joiner(a)
    await hub.enter("c", entry)
    for n in (1, 2, 3):
        hub.deliver(Publication("c", n, "E", n))
    hub.deliver(Join("c", "x", None))
    assert wire(a).sent == []  # buffered
    entry.epoch, entry.last = "E", 2  # history covered up to 2
    hub.go_live("c", entry)
    assert [m["type"] for m in wire(a).messages()] == ["message", "join"]
    assert offsets(wire(a)) == [3]
    hub.deliver(Publication("c", 4, "E", 4))
    assert offsets(wire(a)) == [3, 4]
