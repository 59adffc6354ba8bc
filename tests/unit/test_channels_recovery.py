"""Unit tests of catch-up without sockets: recovery decisions and ordering.

Connections are real, on a real node, through the in-memory transport; the
hub and broker under test are separate ones, so each test picks its broker.
Detach and resume of whole sessions: ``test_channels_resume``.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastcomm.channels.broker import HistoryPage
from fastcomm.channels.hub import Hub, Joiner
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.subscriptions import bring_live, is_recovered
from fastcomm.node.node import Node
from fastcomm.protocol.channel_messages import (
    Publication,
    Recover,
)
from fastcomm.sessions.connection import Connection
from fastcomm.transports.memory import MemoryTransport
from tests.unit.memory import H, make_node, offsets, open_conn, types


async def client(node: Node | None = None) -> tuple[Connection, MemoryTransport]:
    """A real connection (on a node of its own unless ``node`` is given)."""
    return await open_conn(node if node is not None else make_node())


def no_spawn(coro: Any) -> None:
    raise AssertionError("nothing should be spawned here")


def page(epoch: str, top: int, kept: list[int]) -> HistoryPage:
    return HistoryPage(epoch, top, [Publication("c", o, epoch) for o in kept])


@pytest.mark.parametrize(
    ("epoch", "since", "history", "expected"),
    [
        ("E", 5, page("E", 5, []), True),  # nothing missed
        ("E", 2, page("E", 5, [3, 4, 5]), True),
        ("E", 0, page("E", 2, [1, 2]), True),
        ("E", 1, page("E", 5, [3, 4, 5]), False),  # 2 was trimmed
        ("E", 2, page("E", 5, []), False),  # all expired
        ("X", 2, page("E", 5, [3, 4, 5]), False),  # another epoch
        ("E", 9, page("E", 5, []), False),  # the client is ahead: inconsistent
        ("E", 2, page("E", 5, [3, 4]), False),  # a truncated page
    ],
)
def test_is_recovered(epoch: str, since: int, history: HistoryPage, expected: bool) -> None:
    assert is_recovered(epoch, since, history) is expected


class BusyBroker(MemoryBroker):
    """Publishes while a history read is in progress: just before and just after it."""

    before = 0
    after = 0

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        for _ in range(self.before):
            await self.publish(channel, "before", **H)
        result = await super().history(channel, since=since, limit=limit)
        for _ in range(self.after):
            await self.publish(channel, "after", **H)
        return result

    async def position(self, channel: str) -> Any:
        for _ in range(self.before):
            await self.publish(channel, "before", **H)
        return await super().position(channel)


class LaggyBroker(MemoryBroker):
    """Stores at once but delivers only on flush(), like a networked broker's pub/sub."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[str, Any]] = []

    def _deliver(self, channel: str, event: Any) -> None:
        self.held.append((channel, event))

    def flush(self) -> None:
        held, self.held = self.held, []
        for channel, event in held:
            super()._deliver(channel, event)


async def test_fresh_subscribe_reports_the_top_and_goes_live() -> None:
    broker = MemoryBroker()
    for i in range(3):
        await broker.publish("c", i, **H)
    conn, wire = await client()
    assert await bring_live(Hub(broker, no_spawn), Joiner(conn), "c", 7, None)
    epoch = (await broker.position("c")).epoch
    assert wire.messages() == [
        {
            "type": "subscribed",
            "id": 7,
            "channel": "c",
            "offset": 3,
            "epoch": epoch,
            "recovered": False,
        },
    ]
    await broker.publish("c", "live", **H)
    assert offsets(wire) == [4]


@pytest.mark.parametrize(("before", "after"), [(0, 0), (3, 0), (0, 3), (2, 2)])
async def test_recover_with_publications_during_the_read(before: int, after: int) -> None:
    broker = BusyBroker()
    for i in range(5):
        await broker.publish("c", i, **H)
    epoch = (await broker.position("c")).epoch
    broker.before, broker.after = before, after
    conn, wire = await client()
    assert await bring_live(Hub(broker, no_spawn), Joiner(conn), "c", 1, Recover(2, epoch))
    subscribed = wire.messages()[0]
    assert subscribed["recovered"] is True
    assert subscribed["offset"] == 5 + before
    broker.before = broker.after = 0
    await broker.publish("c", "live", **H)
    assert offsets(wire) == list(range(3, 5 + before + after + 2))


@pytest.mark.parametrize("before", [0, 4])
async def test_plain_subscribe_with_publications_during_the_read(before: int) -> None:
    broker = BusyBroker()
    broker.before = before
    conn, wire = await client()
    assert await bring_live(Hub(broker, no_spawn), Joiner(conn), "c", 1, None)
    assert wire.messages()[0]["offset"] == before
    broker.before = 0
    await broker.publish("c", "live", **H)
    assert offsets(wire) == [before + 1]


async def test_recover_with_late_deliveries_has_no_duplicate() -> None:
    broker = LaggyBroker()
    hub = Hub(broker, no_spawn)
    for i in range(4):
        await broker.publish("c", i, **H)
    epoch = (await broker.position("c")).epoch
    conn, wire = await client()
    assert await bring_live(hub, Joiner(conn), "c", 1, Recover(1, epoch))
    assert offsets(wire) == [2, 3, 4]
    await broker.publish("c", "new", **H)
    broker.flush()  # 1..5 arrive now; only 5 is new to this subscriber
    await broker.publish("c", "newer", **H)
    broker.flush()
    assert offsets(wire) == [2, 3, 4, 5, 6]


async def test_recover_fails_when_the_epoch_changed_or_history_is_gone() -> None:
    broker = MemoryBroker()
    for i in range(5):
        await broker.publish("c", i, history_size=2, history_ttl=60.0)
    epoch = (await broker.position("c")).epoch
    node = make_node()
    for recover in (Recover(1, epoch), Recover(3, "old-epoch")):
        conn, wire = await client(node)
        assert await bring_live(Hub(broker, no_spawn), Joiner(conn), "c", None, recover)
        assert types(wire) == ["subscribed"]
        subscribed = wire.messages()[0]
        assert (subscribed["recovered"], subscribed["offset"]) == (False, 5)
        assert subscribed["epoch"] == epoch


async def test_cancelled_entry_sends_nothing() -> None:
    broker = MemoryBroker()
    conn, wire = await client()
    entry = Joiner(conn)
    entry.cancelled = True
    assert not await bring_live(Hub(broker, no_spawn), entry, "c", 1, None)
    assert wire.sent == []
