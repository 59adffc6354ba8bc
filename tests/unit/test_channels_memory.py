"""The in-memory broker beyond the broker contract (tests/unit/test_broker_contract.py):
its sweep, its caps and what it keeps for silent channels."""

from __future__ import annotations

from typing import Any

import pytest

from fastcomm.channels.broker import HistoryPage
from fastcomm.channels.memory import MemoryBroker
from fastcomm.protocol.channel_messages import Publication

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


async def test_history_since_before_the_retained_window_starts_at_the_oldest() -> None:
    broker = MemoryBroker()
    await fill(broker, "a", 5, history_size=2, history_ttl=60.0)
    assert offsets(await broker.history("a", since=1)) == [4, 5]


async def test_publication_is_stored_before_delivery() -> None:
    broker = MemoryBroker()
    seen: list[tuple[Any, list[int]]] = []

    def deliver(event: Any) -> None:
        # What a subscriber reads from history while being delivered includes the event.
        seen.append((event, [p.offset for p in broker._streams["a"].pubs]))

    await broker.start(deliver).subscribe("a")
    await broker.publish("a", "x", **H)
    ((event, stored),) = seen
    assert isinstance(event, Publication)
    assert (event.channel, event.offset, event.data) == ("a", 1, "x")
    assert stored == [1]


async def test_sweep_drops_idle_streams_only() -> None:
    clock = Clock()
    broker = MemoryBroker(clock=clock, meta_ttl=100.0)
    idle = await broker.publish("idle", 1, history_size=0, history_ttl=0.0)
    kept = await broker.publish("kept", 1, history_size=10, history_ttl=1000.0)
    watched = await broker.publish("watched", 1, history_size=0, history_ttl=0.0)
    await broker.start(lambda event: None).subscribe("watched")
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


async def test_streams_are_capped_unsubscribed_without_history_first() -> None:
    broker = MemoryBroker(max_streams=3)
    await broker.start(lambda event: None).subscribe("watched")
    await broker.publish("watched", 1, **H)
    await broker.publish("kept", 1, **H)  # has history
    await broker.publish("bare", 1, history_size=0, history_ttl=0.0)
    await broker.publish("new", 1, **H)  # over the cap: "bare" goes
    assert broker.streams == 3
    assert (await broker.position("bare")).offset == 0  # forgotten: a new epoch next time
    await broker.publish("newer", 1, **H)  # then the unsubscribed one touched least recently
    assert [
        c for c in ("watched", "kept", "new", "newer") if (await broker.position(c)).offset
    ] == [
        "watched",
        "new",
        "newer",
    ]


async def test_history_over_all_channels_is_capped_oldest_channels_first() -> None:
    broker = MemoryBroker(max_history_bytes=10_000)
    for channel in ("old", "mid", "new"):
        for _ in range(4):
            await broker.publish(channel, "x" * 1000, **H)
    assert broker.history_bytes <= 10_000
    kept = {c: len((await broker.history(c)).publications) for c in ("old", "mid", "new")}
    assert (kept["new"] == 4 and kept["old"] < kept["mid"]) or kept["old"] == 0
    assert (await broker.position("old")).offset == 4  # numbering survives the trim


async def test_a_channel_never_published_to_holds_no_stream() -> None:
    broker = MemoryBroker()
    handle = broker.start(lambda event: None)
    for i in range(100):
        await handle.subscribe(f"quiet:{i}")
        await broker.position(f"quiet:{i}")
        await broker.history(f"quiet:{i}", since=0)
    assert broker.streams == 0
    first = await broker.position("quiet:1")
    assert first == await broker.position("quiet:2")  # one "empty" epoch, at offset 0
