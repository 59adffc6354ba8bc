"""What the hub does when the broker misdelivers: gaps filled from history, losses said,
late duplicates skipped; never a silent advance. Real connections on a real node (in-memory
transport) over a broker that drops, holds back, reorders and repeats deliveries."""

from __future__ import annotations

from typing import Any

import fastcomm
from fastcomm.node.node import Node
from fastcomm.protocol.channel_messages import Subscribe
from fastcomm.transports.memory import MemoryTransport
from tests.unit.memory import H, drain, make_node, open_conn, send
from tests.unit.unreliable import Unreliable

NO_HISTORY = {"history_size": 0, "history_ttl": 0.0}


async def subscribers(broker: Unreliable, n: int = 2) -> tuple[Node, list[MemoryTransport]]:
    """A node over ``broker`` and ``n`` connections subscribed to ``c`` (replies read)."""
    app = fastcomm.App()
    app.use_broker(broker)
    node = make_node(app)
    wires = []
    for _ in range(n):
        _, wire = await open_conn(node)
        send(wire, Subscribe(channel="c", id=1))
        wires.append(wire)
    await drain(node)
    for wire in wires:
        assert [m["type"] for m in wire.take()] == ["subscribed"]
    return node, wires


def offsets_of(messages: list[dict[str, Any]]) -> list[int]:
    return [m["offset"] for m in messages if m["type"] == "message"]


async def test_a_dropped_publication_is_filled_from_history_in_order() -> None:
    broker = Unreliable()
    node, wires = await subscribers(broker)
    hub = node.channels.hub
    broker.drop = {2, 3}
    for i in range(5):
        await broker.publish("c", i, **H)
    await drain(node)
    for wire in wires:
        assert offsets_of(wire.take()) == [1, 2, 3, 4, 5]
    assert (hub.gaps_repaired, hub.gaps_lost) == (1, 0)


async def test_a_loss_history_cannot_fill_is_pushed_as_not_recovered_then_goes_on() -> None:
    broker = Unreliable()
    node, wires = await subscribers(broker)
    hub = node.channels.hub
    broker.drop = {2, 3}
    for i in range(5):
        position = await broker.publish("c", i, **NO_HISTORY)
    await drain(node)
    for wire in wires:
        sent = wire.take()
        assert [(m["type"], m.get("offset")) for m in sent] == [
            ("message", 1),
            ("subscribed", 3),
            ("message", 4),
            ("message", 5),
        ]
        notice = sent[1]
        assert notice == {
            "type": "subscribed",
            "id": None,
            "channel": "c",
            "offset": 3,
            "epoch": position.epoch,
            "recovered": False,
        }
    assert (hub.gaps_repaired, hub.gaps_lost) == (0, 1)


async def test_reordered_deliveries_reach_subscribers_in_order_once() -> None:
    broker = Unreliable()
    node, wires = await subscribers(broker)
    await broker.publish("c", 0, **H)
    broker.holding = True
    for i in range(1, 5):
        await broker.publish("c", i, **H)
    broker.release()  # 5, 4, 3, 2: the first is a gap, filled; the rest are late
    await drain(node)
    for wire in wires:
        assert offsets_of(wire.take()) == [1, 2, 3, 4, 5]


async def test_a_late_duplicate_is_skipped() -> None:
    broker = Unreliable()
    node, wires = await subscribers(broker)
    for i in range(3):
        await broker.publish("c", i, **H)
    for wire in wires:
        assert offsets_of(wire.take()) == [1, 2, 3]
    first = await broker.history("c", since=0, limit=1)
    broker.redeliver(first.publications[0])
    await drain(node)
    for wire in wires:
        assert wire.take() == []


async def test_a_new_epoch_after_publications_is_said_and_its_first_publication_follows() -> None:
    broker = Unreliable()
    node, wires = await subscribers(broker, 1)
    await broker.publish("c", 0, **NO_HISTORY)
    before = (await broker.position("c")).epoch
    broker.forget_all()  # the stream is lost: the next publication starts a new epoch
    after = await broker.publish("c", 1, **NO_HISTORY)
    await drain(node)
    sent = wires[0].take()
    assert after.epoch != before
    assert [(m["type"], m["epoch"], m["offset"]) for m in sent] == [
        ("message", before, 1),
        ("subscribed", after.epoch, 0),
        ("message", after.epoch, 1),
    ]
    assert sent[1]["recovered"] is False


async def test_offset_zero_takes_the_first_publication_of_any_epoch_silently() -> None:
    broker = Unreliable()
    node, wires = await subscribers(broker)
    hub = node.channels.hub
    await broker.publish("c", 0, **NO_HISTORY)
    await drain(node)
    for wire in wires:
        assert [m["type"] for m in wire.take()] == ["message"]
    assert (hub.gaps_repaired, hub.gaps_lost) == (0, 0)
