"""Unit tests of the in-memory broker: offsets, epochs, bounded history, presence, delivery."""

from __future__ import annotations

from typing import Any

import pytest

from fastcomm.channels.broker import Broker, HistoryPage, StreamPosition
from fastcomm.channels.memory import MemoryBroker
from fastcomm.protocol.channel_messages import Join, Leave, Member, Publication

H = {"history_size": 100, "history_ttl": 60.0}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def offsets(page: HistoryPage) -> list[int]:
    return [p.offset for p in page.publications]


async def fill(broker: MemoryBroker, channel: str, n: int, **options: Any) -> None:
    for i in range(n):
        await broker.publish(channel, i, **(options or H))


def test_memory_broker_satisfies_the_protocol() -> None:
    broker: Broker = MemoryBroker()
    assert isinstance(broker, MemoryBroker)


async def test_offsets_start_at_one_and_grow_by_one_per_channel() -> None:
    broker = MemoryBroker()
    assert (await broker.position("a")).offset == 0
    first = await broker.publish("a", "x", **H)
    second = await broker.publish("a", "y", **H)
    other = await broker.publish("b", "z", **H)
    assert (first.offset, second.offset, other.offset) == (1, 2, 1)
    assert first.epoch == second.epoch == (await broker.position("a")).epoch
    assert await broker.position("a") == StreamPosition(first.epoch, 2)
    assert other.epoch != first.epoch  # random per channel


async def test_a_new_broker_shows_a_new_epoch() -> None:
    one, two = MemoryBroker(), MemoryBroker()
    assert (await one.position("a")).epoch != (await two.position("a")).epoch


async def test_history_bounded_by_size() -> None:
    broker = MemoryBroker()
    await fill(broker, "a", 10, history_size=3, history_ttl=60.0)
    page = await broker.history("a")
    assert offsets(page) == [8, 9, 10]
    assert page.offset == 10
    assert [p.data for p in page.publications] == [7, 8, 9]


async def test_history_bounded_by_age() -> None:
    clock = Clock()
    broker = MemoryBroker(clock=clock)
    await fill(broker, "a", 2, history_size=10, history_ttl=5.0)
    clock.now += 3
    await fill(broker, "a", 2, history_size=10, history_ttl=5.0)
    assert offsets(await broker.history("a")) == [1, 2, 3, 4]
    clock.now += 2  # the first two are exactly 5 s old
    assert offsets(await broker.history("a")) == [3, 4]
    clock.now += 10
    page = await broker.history("a", since=2)
    assert page.publications == [] and page.offset == 4


async def test_history_since_and_limit() -> None:
    broker = MemoryBroker()
    await fill(broker, "a", 6)
    assert offsets(await broker.history("a", since=3)) == [4, 5, 6]
    assert offsets(await broker.history("a", since=0, limit=2)) == [1, 2]
    assert offsets(await broker.history("a", since=4, limit=10)) == [5, 6]
    assert offsets(await broker.history("a", limit=2)) == [5, 6]  # latest two, oldest first
    assert offsets(await broker.history("a", since=6)) == []
    assert offsets(await broker.history("a", since=99)) == []
    page = await broker.history("a", limit=0)
    assert page.publications == [] and page.offset == 6


async def test_history_since_before_the_retained_window_starts_at_the_oldest() -> None:
    broker = MemoryBroker()
    await fill(broker, "a", 5, history_size=2, history_ttl=60.0)
    assert offsets(await broker.history("a", since=1)) == [4, 5]


async def test_history_disabled_still_numbers_publications() -> None:
    broker = MemoryBroker()
    await fill(broker, "a", 3, history_size=0, history_ttl=60.0)
    await fill(broker, "b", 3, history_size=5, history_ttl=0.0)
    for channel in ("a", "b"):
        page = await broker.history(channel)
        assert page.publications == [] and page.offset == 3
    await fill(broker, "c", 3)
    await fill(broker, "c", 1, history_size=0, history_ttl=60.0)
    assert offsets(await broker.history("c")) == []


async def test_publication_is_stored_before_delivery() -> None:
    broker = MemoryBroker()
    seen: list[tuple[Any, list[int]]] = []

    def deliver(event: Any) -> None:
        # What a subscriber reads from history while being delivered includes the event.
        seen.append((event, [p.offset for p in broker._streams["a"].pubs]))

    await broker.subscribe("a", deliver)
    await broker.publish("a", "x", **H)
    ((event, stored),) = seen
    assert isinstance(event, Publication)
    assert (event.channel, event.offset, event.data) == ("a", 1, "x")
    assert stored == [1]


async def test_subscribe_unsubscribe_and_events() -> None:
    broker = MemoryBroker()
    got: list[Any] = []
    await broker.subscribe("a", got.append)
    await broker.publish("a", 1, **H)
    await broker.publish("b", 2, **H)  # another channel: not delivered
    join = Join("a", "s1", "u1")
    await broker.publish_event("a", join)
    await broker.unsubscribe("a")
    await broker.publish("a", 3, **H)
    await broker.publish_event("a", Leave("a", "s1", "u1"))
    await broker.unsubscribe("a")  # idempotent
    assert [type(e) for e in got] == [Publication, Join]
    assert got[1] is join
    assert offsets(await broker.history("a")) == [1, 2]  # events are not stored


async def test_a_failing_subscriber_does_not_fail_the_publisher() -> None:
    broker = MemoryBroker()

    def broken(event: Any) -> None:
        raise RuntimeError("bug")

    await broker.subscribe("a", broken)
    assert (await broker.publish("a", 1, **H)).offset == 1


async def test_presence_add_remove_list() -> None:
    broker = MemoryBroker()
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
    assert broker._presence == {}


async def test_sweep_drops_idle_streams_only() -> None:
    clock = Clock()
    broker = MemoryBroker(clock=clock, meta_ttl=100.0)
    idle = await broker.publish("idle", 1, history_size=0, history_ttl=0.0)
    kept = await broker.publish("kept", 1, history_size=10, history_ttl=1000.0)
    await broker.subscribe("watched", lambda event: None)
    watched = await broker.position("watched")
    clock.now += 101
    broker.sweep()
    assert (await broker.position("idle")).epoch != idle.epoch  # numbering restarted
    assert (await broker.position("idle")).offset == 0
    assert await broker.position("kept") == kept
    assert await broker.position("watched") == watched
    await broker.close()


async def test_sweep_frees_expired_history_and_rearms() -> None:
    clock = Clock()
    broker = MemoryBroker(clock=clock, meta_ttl=1000.0, sweep_interval=60.0)
    await fill(broker, "a", 3, history_size=10, history_ttl=5.0)
    assert broker._timer is not None
    clock.now += 6
    broker.sweep()
    assert len(broker._streams["a"].pubs) == 0
    assert broker._timer is not None  # the stream is still there
    await broker.close()
    assert broker._timer is None


@pytest.mark.parametrize("since", [None, 0, 2])
async def test_history_of_unknown_channel_is_empty(since: int | None) -> None:
    page = await MemoryBroker().history("nothing", since=since)
    assert page.publications == [] and page.offset == 0 and page.epoch
