"""Unit tests of recovery without sockets: catch-up ordering, detach positions, resume."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

import fastcomm
from fastcomm.channels.broker import HistoryPage
from fastcomm.channels.handlers import Channels
from fastcomm.channels.hub import Catchup, Hub
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.recovery import catch_up, is_recovered
from fastcomm.protocol.channel_messages import (
    Publication,
    Recover,
    Subscribe,
    Unsubscribe,
)
from fastcomm.sessions.session import Session

H = {"history_size": 100, "history_ttl": 60.0}
_json = msgspec.json.Encoder()


class JsonCodec:
    name = "fastcomm.v1.json"
    binary = False

    def encode(self, msg: Any) -> bytes:
        return _json.encode(msg)


CODEC = JsonCodec()


class FakeConn:
    """Stands for a Connection: records decoded messages."""

    def __init__(self, sid: str = "s1", session: Session | None = None) -> None:
        self.codec = CODEC
        self.closed = False
        self.sent: list[dict[str, Any]] = []
        self.session = session or Session(sid, "user-" + sid, {"m": 1}, "token-" + sid)

    session_id = property(lambda self: self.session.id)
    user = property(lambda self: self.session.user)
    meta = property(lambda self: self.session.meta)

    def send_encoded(self, data: bytes) -> bool:
        if self.closed:
            return False
        self.sent.append(msgspec.json.decode(data))
        return True

    def send(self, msg: Any) -> bool:
        return self.send_encoded(self.codec.encode(msg))

    def send_error(self, rid: int | None, code: str, message: str, details: Any = None) -> None:
        self.send({"type": "error", "id": rid, "code": code})

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]

    def offsets(self) -> list[int]:
        return [m["offset"] for m in self.sent if m["type"] == "message"]


def no_spawn(coro: Any) -> None:
    raise AssertionError("nothing should be spawned here")


def page(epoch: str, top: int, offsets: list[int]) -> HistoryPage:
    return HistoryPage(epoch, top, [Publication("c", o, epoch) for o in offsets])


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
    conn = FakeConn()
    assert await catch_up(Hub(broker, no_spawn), Catchup(conn), "c", 7, None)
    epoch = (await broker.position("c")).epoch
    assert conn.sent == [
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
    assert conn.offsets() == [4]


@pytest.mark.parametrize(("before", "after"), [(0, 0), (3, 0), (0, 3), (2, 2)])
async def test_recover_with_publications_during_the_read(before: int, after: int) -> None:
    broker = BusyBroker()
    for i in range(5):
        await broker.publish("c", i, **H)
    epoch = (await broker.position("c")).epoch
    broker.before, broker.after = before, after
    conn = FakeConn()
    assert await catch_up(Hub(broker, no_spawn), Catchup(conn), "c", 1, Recover(2, epoch))
    assert conn.sent[0]["recovered"] is True
    assert conn.sent[0]["offset"] == 5 + before
    broker.before = broker.after = 0
    await broker.publish("c", "live", **H)
    assert conn.offsets() == list(range(3, 5 + before + after + 2))


@pytest.mark.parametrize("before", [0, 4])
async def test_plain_subscribe_with_publications_during_the_read(before: int) -> None:
    broker = BusyBroker()
    broker.before = before
    conn = FakeConn()
    assert await catch_up(Hub(broker, no_spawn), Catchup(conn), "c", 1, None)
    assert conn.sent[0]["offset"] == before
    broker.before = 0
    await broker.publish("c", "live", **H)
    assert conn.offsets() == [before + 1]


async def test_recover_with_late_deliveries_has_no_duplicate() -> None:
    broker = LaggyBroker()
    hub = Hub(broker, no_spawn)
    for i in range(4):
        await broker.publish("c", i, **H)
    epoch = (await broker.position("c")).epoch
    conn = FakeConn()
    assert await catch_up(hub, Catchup(conn), "c", 1, Recover(1, epoch))
    assert conn.offsets() == [2, 3, 4]
    await broker.publish("c", "new", **H)
    broker.flush()  # 1..5 arrive now; only 5 is new to this subscriber
    await broker.publish("c", "newer", **H)
    broker.flush()
    assert conn.offsets() == [2, 3, 4, 5, 6]


async def test_recover_fails_when_the_epoch_changed_or_history_is_gone() -> None:
    broker = MemoryBroker()
    for i in range(5):
        await broker.publish("c", i, history_size=2, history_ttl=60.0)
    epoch = (await broker.position("c")).epoch
    for recover in (Recover(1, epoch), Recover(3, "old-epoch")):
        conn = FakeConn()
        assert await catch_up(Hub(broker, no_spawn), Catchup(conn), "c", None, recover)
        assert conn.types() == ["subscribed"]
        assert (conn.sent[0]["recovered"], conn.sent[0]["offset"]) == (False, 5)
        assert conn.sent[0]["epoch"] == epoch


async def test_cancelled_entry_sends_nothing() -> None:
    broker = MemoryBroker()
    conn = FakeConn()
    entry = Catchup(conn)
    entry.cancelled = True
    assert not await catch_up(Hub(broker, no_spawn), entry, "c", 1, None)
    assert conn.sent == []


# -- Channels: detach, resume, unsubscribe ordering (no sockets) --------------------


def make(app: fastcomm.App | None = None, **options: Any) -> Channels:
    server = fastcomm.Server(app, port=0, **options)
    channels: Channels = server.node.channels
    return channels


async def drain(channels: Channels) -> None:
    while channels.node.router.inflight:
        await asyncio.gather(*channels.node.router.inflight)


async def test_detach_records_positions_and_resume_recovers_the_gap() -> None:
    channels = make()
    conn = FakeConn()
    channels.subscribe(Subscribe(channel="a", id=1), conn)
    channels.subscribe(Subscribe(channel="b", id=2), conn)
    await drain(channels)
    for i in range(3):
        await channels.broker.publish("a", i, **H)
    assert len(await channels.broker.presence("a")) == 1
    channels.detached(conn)
    await drain(channels)
    epoch_a = (await channels.broker.position("a")).epoch
    epoch_b = (await channels.broker.position("b")).epoch
    assert conn.session.positions == {"a": (epoch_a, 3), "b": (epoch_b, 0)}
    assert await channels.broker.presence("a") == []  # left at once
    assert channels.hub.count() == 0
    for i in range(2):
        await channels.broker.publish("a", i, **H)
    again = FakeConn(session=conn.session)
    channels.attached(again, True)
    await drain(channels)
    by_channel = {m["channel"]: m for m in again.sent if m["type"] == "subscribed"}
    assert by_channel["a"]["recovered"] and by_channel["a"]["id"] is None
    assert by_channel["b"]["recovered"]
    assert again.offsets() == [4, 5]
    assert len(await channels.broker.presence("a")) == 1  # rejoined


async def test_detach_forgets_a_subscription_that_never_got_subscribed() -> None:
    gate = asyncio.Event()
    app = fastcomm.App()

    @app.authorize_subscribe
    async def slow(conn: Any, channel: str) -> bool:
        await gate.wait()
        return True

    channels = make(app)
    conn = FakeConn()
    channels.subscribe(Subscribe(channel="a", id=1), conn)
    await asyncio.sleep(0)
    channels.detached(conn)
    gate.set()
    await drain(channels)
    assert conn.session.positions == {}
    assert conn.sent == []
    assert channels.hub.count() == 0


async def test_unsubscribe_during_subscribe_is_answered_after_it() -> None:
    gate = asyncio.Event()
    app = fastcomm.App()

    @app.authorize_subscribe
    async def slow(conn: Any, channel: str) -> bool:
        await gate.wait()
        return True

    channels = make(app)
    conn = FakeConn()
    channels.subscribe(Subscribe(channel="a", id=1), conn)
    channels.unsubscribe(Unsubscribe(channel="a", id=2), conn)
    await asyncio.sleep(0)
    assert conn.sent == []
    gate.set()
    await drain(channels)
    assert [(m["type"], m["id"]) for m in conn.sent] == [("subscribed", 1), ("unsubscribed", 2)]
    assert conn.session.positions == {}
    assert channels.hub.count() == 0


async def test_restore_refused_by_the_hook_pushes_unsubscribed() -> None:
    app = fastcomm.App()
    allowed = {"a": True, "b": True}
    app.authorize_subscribe(lambda conn, channel: allowed[channel])
    channels = make(app)
    conn = FakeConn()
    channels.subscribe(Subscribe(channel="a", id=1), conn)
    channels.subscribe(Subscribe(channel="b", id=2), conn)
    await drain(channels)
    channels.detached(conn)
    allowed["b"] = False
    again = FakeConn(session=conn.session)
    channels.attached(again, True)
    await drain(channels)
    assert {(m["type"], m["channel"]) for m in again.sent} == {
        ("subscribed", "a"),
        ("unsubscribed", "b"),
    }
    assert set(again.session.positions) == {"a"}


async def test_not_resumed_restores_nothing() -> None:
    channels = make()
    conn = FakeConn()
    conn.session.positions["a"] = ("E", 3)
    channels.attached(conn, False)
    await drain(channels)
    assert conn.sent == []
