"""The broker contract (``fastcomm.channels.broker``): what every broker must do.

Each test runs on every broker in ``BROKERS``, through the interface only:
numbering, storage before delivery, history slices and bounds, epochs,
subscriptions and their order, delivery to several nodes, presence, session
records, the node registry and control messages.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from fastcomm.channels.broker import Broker, BrokerHandle, Event, HistoryPage
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.protocol.channel_messages import Join, Leave, Member, Publication
from fastcomm.sessions.record import SessionRecord
from tests.redisserver import RedisServer
from tests.waiting import eventually

H: dict[str, Any] = {"history_size": 100, "history_ttl": 60.0}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Kind:
    """How to make a broker of one kind, and to make it forget idle streams at once."""

    make: Callable[[Clock], Broker]
    forget_idle: Callable[[Broker, Clock], None]
    fixture: str = ""  # one the broker needs (a server), requested before make


def _memory_forget_idle(broker: Broker, clock: Clock) -> None:
    assert isinstance(broker, MemoryBroker)
    clock.now += broker.meta_ttl + 1
    broker.sweep()


_prefixes = itertools.count()


def _redis(clock: Clock) -> Broker:
    """A broker on the session's redis-server, with keys of its own (so another one
    is independent, as a restarted Redis would be)."""
    assert RedisServer.current is not None
    return RedisBroker(RedisServer.current.url, prefix=f"c{next(_prefixes)}:", clock=clock)


def _redis_forget_idle(broker: Broker, clock: Clock) -> None:
    """Delete the meta hash of every channel without history (as its TTL would)."""
    assert isinstance(broker, RedisBroker) and RedisServer.current is not None
    client = redis.Redis.from_url(RedisServer.current.url)
    try:
        for meta in client.scan_iter(match=f"{broker.prefix}*.m"):
            if not client.exists(meta[:-2] + b".s"):
                client.delete(meta)
    finally:
        client.close()


BROKERS: dict[str, Kind] = {
    "memory": Kind(lambda clock: MemoryBroker(clock=clock), _memory_forget_idle),
    "redis": Kind(_redis, _redis_forget_idle, "redis_url"),
}


@dataclass
class Backend:
    """A broker under test, and how to let time pass for it."""

    kind: Kind
    broker: Broker
    clock: Clock
    made: list[Broker] = field(default_factory=list)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    def forget_idle(self) -> None:
        """Streams with no history and no subscribed node, idle: dropped now."""
        self.kind.forget_idle(self.broker, self.clock)

    def another(self) -> Broker:
        """A second, independent broker of the same kind (a restarted backend)."""
        broker = self.kind.make(self.clock)
        self.made.append(broker)
        return broker


@pytest.fixture(params=sorted(BROKERS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock, kind = Clock(), BROKERS[request.param]
    if kind.fixture:
        request.getfixturevalue(kind.fixture)
    made = Backend(kind, kind.make(clock), clock)
    try:
        yield made
    finally:
        for broker in [made.broker, *made.made]:
            await broker.close()


class Node:
    """One node's handle and what it was delivered."""

    def __init__(self, broker: Broker) -> None:
        self.events: list[Event] = []
        self.handle: BrokerHandle = broker.start(self.events.append)

    def offsets(self, channel: str = "a") -> list[int]:
        return [e.offset for e in self.events if type(e) is Publication and e.channel == channel]


def offsets(page: HistoryPage) -> list[int]:
    return [p.offset for p in page.publications]


async def fill(broker: Broker, channel: str, n: int, **options: Any) -> None:
    for i in range(n):
        await broker.publish(channel, i, **(options or H))


# -- numbering ---------------------------------------------------------------------------
async def test_offsets_start_at_one_and_grow_by_one_per_channel(backend: Backend) -> None:
    broker = backend.broker
    assert (await broker.position("a")).offset == 0
    first = await broker.publish("a", "x", **H)
    second = await broker.publish("a", "y", **H)
    other = await broker.publish("b", "z", **H)
    assert (first.offset, second.offset, other.offset) == (1, 2, 1)
    assert first.epoch == second.epoch == (await broker.position("a")).epoch
    assert (await broker.position("a")).offset == 2


async def test_another_backend_numbers_in_another_epoch(backend: Backend) -> None:
    first = await backend.broker.publish("a", 1, **H)
    again = await backend.another().publish("a", 1, **H)
    assert again.offset == 1 and again.epoch != first.epoch


async def test_a_stream_dropped_and_created_again_never_reuses_an_epoch(backend: Backend) -> None:
    broker, seen = backend.broker, set()
    for _ in range(3):
        position = await broker.publish("a", 1, history_size=0, history_ttl=0.0)
        assert position.offset == 1 and position.epoch not in seen
        seen.add(position.epoch)
        backend.forget_idle()
        assert (await broker.position("a")).offset == 0


# -- storage before delivery ----------------------------------------------------------------
async def test_a_publication_is_stored_before_it_is_delivered(backend: Backend) -> None:
    broker = backend.broker
    reads: list[asyncio.Task[HistoryPage]] = []

    def deliver(event: Event) -> None:
        # A reader that subscribed first and reads history when told misses nothing.
        reads.append(asyncio.ensure_future(broker.history(event.channel)))

    await broker.start(deliver).subscribe("a")
    await broker.publish("a", "x", **H)
    await asyncio.wait_for(asyncio.gather(*reads), 5)
    assert len(reads) == 1 and offsets(reads[0].result()) == [1]


# -- history ---------------------------------------------------------------------------------
async def test_history_slices(backend: Backend) -> None:
    broker = backend.broker
    await fill(broker, "a", 5)
    assert offsets(await broker.history("a")) == [1, 2, 3, 4, 5]
    assert offsets(await broker.history("a", limit=2)) == [4, 5]  # the latest
    assert offsets(await broker.history("a", since=2)) == [3, 4, 5]
    assert offsets(await broker.history("a", since=2, limit=2)) == [3, 4]  # the first after
    assert offsets(await broker.history("a", since=5)) == []
    page = await broker.history("a", limit=0)
    assert (offsets(page), page.offset) == ([], 5)
    nothing = await broker.history("never")
    assert (offsets(nothing), nothing.offset) == ([], 0)


async def test_history_is_bounded_by_count_ttl_and_bytes(backend: Backend) -> None:
    broker = backend.broker
    await fill(broker, "count", 10, history_size=3, history_ttl=60.0)
    assert offsets(await broker.history("count")) == [8, 9, 10]
    await fill(broker, "ttl", 2, history_size=10, history_ttl=5.0)
    backend.advance(6)
    await fill(broker, "ttl", 1, history_size=10, history_ttl=5.0)
    page = await broker.history("ttl")
    assert (offsets(page), page.offset) == ([3], 3)  # expired entries are never returned
    for _ in range(10):
        await broker.publish("bytes", "x" * 1000, history_bytes=3000, **H)
    kept = offsets(await broker.history("bytes"))
    assert 1 <= len(kept) <= 3 and kept[-1] == 10  # the newest, within the byte budget
    await fill(broker, "none", 2, history_size=0, history_ttl=60.0)
    page = await broker.history("none")
    assert (offsets(page), page.offset) == ([], 2)  # numbered, not kept


# -- subscriptions and delivery ---------------------------------------------------------------
async def test_deliveries_come_in_offset_order_once_to_each_subscribed_node(
    backend: Backend,
) -> None:
    broker = backend.broker
    one, two, other = Node(broker), Node(broker), Node(broker)
    await one.handle.subscribe("a")
    await two.handle.subscribe("a")
    await two.handle.subscribe("a")  # twice: still once
    await other.handle.subscribe("b")
    await fill(broker, "a", 5)
    assert one.offsets() == two.offsets() == [1, 2, 3, 4, 5]
    assert other.events == []


async def test_events_are_delivered_and_not_stored(backend: Backend) -> None:
    broker = backend.broker
    node = Node(broker)
    await node.handle.subscribe("a")
    join, leave = Join("a", "s1", "u1"), Leave("a", "s1", "u1")
    await broker.publish_event("a", join)
    await broker.publish("a", 1, **H)
    await broker.publish_event("a", leave)
    assert node.events[0] == join and node.events[2] == leave
    assert offsets(await broker.history("a")) == [1]


async def test_subscribe_and_unsubscribe_take_effect_in_the_order_they_are_made(
    backend: Backend,
) -> None:
    broker = backend.broker
    off, on = Node(broker), Node(broker)
    await asyncio.gather(off.handle.subscribe("a"), off.handle.unsubscribe("a"))
    await on.handle.subscribe("a")
    await asyncio.gather(on.handle.unsubscribe("a"), on.handle.subscribe("a"))
    await broker.publish("a", 1, **H)
    assert off.events == [] and on.offsets() == [1]
    await off.handle.unsubscribe("never")  # not subscribed: no error


async def test_a_node_closing_its_handle_leaves_the_broker_to_the_others(
    backend: Backend,
) -> None:
    broker = backend.broker
    leaving, staying = Node(broker), Node(broker)
    for node in (leaving, staying):
        await node.handle.subscribe("a")
    await leaving.handle.close()
    await broker.publish("a", 1, **H)
    assert leaving.events == [] and staying.offsets() == [1]


async def test_a_failing_node_does_not_fail_the_publisher_nor_the_others(
    backend: Backend,
) -> None:
    broker = backend.broker

    def broken(event: Event) -> None:
        raise RuntimeError("bug")

    await broker.start(broken).subscribe("a")
    healthy = Node(broker)
    await healthy.handle.subscribe("a")
    assert (await broker.publish("a", 1, **H)).offset == 1
    assert healthy.offsets() == [1]


# -- presence --------------------------------------------------------------------------------
async def test_presence_add_replace_remove_list(backend: Backend) -> None:
    broker = backend.broker
    assert await broker.presence("a") == []
    await broker.presence_add("a", Member("s1", "alice", {"x": 1}))
    await broker.presence_add("a", Member("s2", None))
    await broker.presence_add("a", Member("s1", "alice", {"x": 2}))  # replaces
    members = sorted(await broker.presence("a"), key=lambda m: m.session)
    assert members == [Member("s1", "alice", {"x": 2}), Member("s2", None)]
    await broker.presence_remove("a", "s1")
    await broker.presence_remove("a", "nobody")
    assert await broker.presence("a") == [Member("s2", None)]
    await broker.presence_remove("a", "s2")
    assert await broker.presence("a") == []


async def test_presence_with_a_ttl_expires_unless_kept(backend: Backend) -> None:
    broker = backend.broker
    await broker.presence_add("a", Member("kept", None), ttl=10.0)
    await broker.presence_add("a", Member("dead", None), ttl=10.0)
    await broker.presence_add("b", Member("kept", None), ttl=10.0)
    await broker.presence_add("a", Member("forever", None))
    backend.advance(6)
    await broker.presence_keep([("a", "kept"), ("b", "kept"), ("a", "nobody")], 10.0)
    backend.advance(6)  # 12 s: "dead" was not kept
    assert sorted(m.session for m in await broker.presence("a")) == ["forever", "kept"]
    assert [m.session for m in await broker.presence("b")] == ["kept"]
    assert await broker.presence("nobody") == []


async def test_presence_leave_removes_a_session_from_many_channels_at_once(
    backend: Backend,
) -> None:
    broker = backend.broker
    for channel in ("a", "b", "c"):
        await broker.presence_add(channel, Member("s1", None), ttl=60.0)
        await broker.presence_add(channel, Member("s2", None), ttl=60.0)
    await broker.presence_leave("s1", ["a", "b", "never"])
    assert [m.session for m in await broker.presence("a")] == ["s2"]
    assert [m.session for m in await broker.presence("b")] == ["s2"]
    assert sorted(m.session for m in await broker.presence("c")) == ["s1", "s2"]


# -- session records ------------------------------------------------------------------------
def _record(sid: str, user: str | None = "ann", node: str = "n1") -> SessionRecord:
    return SessionRecord(sid, user, {"m": [1, 2]}, {"chat": ("e1", 7)}, "quiet a", node)


async def test_a_session_record_is_claimed_once_by_its_user_only(backend: Backend) -> None:
    store = backend.broker.sessions
    await store.save("t1", _record("s1"), 60.0)
    assert await store.claim("t1", "bob") is None  # another user's: it stays
    assert await store.claim("t1", None) is None
    assert await store.claim("t1", "ann") == _record("s1")
    assert await store.claim("t1", "ann") is None  # one use
    assert await store.claim("never", "ann") is None
    await store.save("t2", _record("s2", user=None, node=""), 60.0)
    assert await store.claim("t2", None) == _record("s2", user=None, node="")


async def test_claims_of_one_record_race_and_exactly_one_wins(backend: Backend) -> None:
    store = backend.broker.sessions
    await store.save("t", _record("s"), 60.0)
    claims = await asyncio.gather(*(store.claim("t", "ann") for _ in range(8)))
    assert [c for c in claims if c is not None] == [_record("s")]


async def test_a_checkpoint_replaces_existing_records_and_never_revives_one(
    backend: Backend,
) -> None:
    store = backend.broker.sessions
    await store.save("live", _record("s1"), 60.0)
    await store.save("gone", _record("s2"), 60.0)
    await store.claim("gone", "ann")
    await store.save("revoked", _record("s3"), 60.0)
    await store.revoke("revoked")
    await store.revoke("revoked")  # no error
    moved = _record("s1", node="")
    await store.checkpoint(
        [("live", moved), ("gone", _record("s2")), ("revoked", _record("s3")), ("x", moved)],
        60.0,
    )
    assert await store.claim("live", "ann") == moved
    for token in ("gone", "revoked", "x"):
        assert await store.claim(token, "ann") is None


async def test_a_session_record_lives_its_ttl_after_its_last_write(backend: Backend) -> None:
    store = backend.broker.sessions
    await store.save("kept", _record("s1"), 10.0)
    await store.save("dropped", _record("s2"), 10.0)
    backend.advance(6)
    await store.checkpoint([("kept", _record("s1"))], 10.0)
    backend.advance(6)  # 12 s after the first write, 6 s after the checkpoint
    assert await store.claim("dropped", "ann") is None
    assert await store.claim("kept", "ann") == _record("s1")


# -- the node registry and control messages ----------------------------------------------------
class ControlledNode:
    """A node's handle, with what the control messages brought it."""

    def __init__(self, broker: Broker, uid: str) -> None:
        self.got: list[bytes] = []
        self.handle = broker.start(lambda event: None, uid=uid, control=self.got.append)


async def test_nodes_announce_themselves_and_leave_the_registry(backend: Backend) -> None:
    broker = backend.broker
    one, two = ControlledNode(broker, "n1"), ControlledNode(broker, "n2")
    await one.handle.announce(b"one", 10.0)
    await two.handle.announce(b"two", 10.0)
    assert await one.handle.nodes() == {"n1": b"one", "n2": b"two"}
    backend.advance(6)
    await one.handle.announce(b"one again", 10.0)
    backend.advance(6)  # two did not announce again: expired
    assert await two.handle.nodes() == {"n1": b"one again"}
    await two.handle.announce(b"two", 10.0)
    await two.handle.close()  # a clean stop leaves at once
    assert await one.handle.nodes() == {"n1": b"one again"}


async def test_control_messages_reach_one_node_or_every_other_in_order(
    backend: Backend,
) -> None:
    broker = backend.broker
    one, two, three = (ControlledNode(broker, f"n{i}") for i in (1, 2, 3))
    for node in (one, two, three):  # a node receives control messages once it announced
        await node.handle.announce(b"", 60.0)
    await one.handle.send(b"all-1")
    await one.handle.send(b"to-three", "n3")
    await one.handle.send(b"all-2")
    await one.handle.send(b"nobody", "n9")  # no such node: nothing happens
    await eventually(lambda: len(three.got) == 3 and len(two.got) == 2, 5, "delivered")
    assert two.got == [b"all-1", b"all-2"]
    assert three.got == [b"all-1", b"to-three", b"all-2"]
    assert one.got == []  # a broadcast skips its sender
    await three.handle.close()
    await one.handle.send(b"after", "n3")
    await one.handle.send(b"all-3")
    await eventually(lambda: len(two.got) == 3, 5, "delivered to two")
    assert three.got == [b"all-1", b"to-three", b"all-2"]  # closed: no more


# -- idempotent publishes -----------------------------------------------------------------------
async def test_a_publish_repeating_an_idempotency_key_publishes_nothing_more(
    backend: Backend,
) -> None:
    broker = backend.broker
    node = Node(broker)
    await node.handle.subscribe("a")
    first = await broker.publish("a", "x", idempotency_key="k1", **H)
    again = await broker.publish("a", "x", idempotency_key="k1", **H)
    other = await broker.publish("b", "x", idempotency_key="k1", **H)  # keys are per channel
    plain = await broker.publish("a", "y", **H)
    assert again == first and other.offset == 1 and plain.offset == 2
    assert offsets(await broker.history("a")) == [1, 2]
    await eventually(lambda: node.offsets() == [1, 2], 5, "delivered once each")
    backend.advance(301)  # past the idempotency window (5 minutes by default)
    later = await broker.publish("a", "x", idempotency_key="k1", **H)
    assert later.offset == 3
