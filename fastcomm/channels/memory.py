"""The in-memory broker: the embedded default for a single process.

A channel that has been published to has a stream: an epoch, the top offset
and a bounded history. A channel never published to has no stream at all:
its position is offset 0 of the broker's "empty" epoch, which any epoch may
follow, so subscribing to silent channels costs the broker nothing. Epochs are this broker's random
prefix and a counter, so a re-created stream never reuses an epoch, and a new
broker (a restarted process) draws new ones: clients see that history was
lost. Publications are delivered synchronously, inside
:meth:`MemoryBroker.publish`, after being stored; that makes every operation
effectively atomic on the event loop.

Bounds: at most ``max_streams`` streams (over the cap, streams with no
subscribed node and no history go first, then those with no subscribed node,
then any, least recently touched first), history per channel by count, TTL
and bytes, and at most ``max_history_bytes`` of history in all (over it, the
oldest entries of the least recently touched channels go first).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from itertools import count, islice
from typing import Any

import msgspec

from fastcomm.channels.broker import Control, Deliver, HistoryPage, StreamPosition
from fastcomm.channels.members import Members
from fastcomm.channels.memory_nodes import MemoryHandle, NodeBus
from fastcomm.channels.streams import IdempotencyKeys, Stream
from fastcomm.protocol.channel_messages import Join, Leave, Member, Publication
from fastcomm.sessions.memory_store import MemorySessionStore

__all__ = ["ENTRY_OVERHEAD", "MemoryBroker"]

log = logging.getLogger("fastcomm.channels")

ENTRY_OVERHEAD = 120
"""Bytes counted for one history entry besides its encoded data (the Publication
object, its deadline and the deque slots)."""

_size_of = msgspec.msgpack.Encoder().encode


class MemoryBroker:
    """A :class:`~fastcomm.channels.broker.Broker` held in this process.

    ``clock`` is the time source for history TTLs (monotonic seconds). A
    stream with no retained history, no subscribed node and no activity for
    ``meta_ttl`` seconds is dropped (its channel starts a new epoch), which is
    what makes an idle channel cost nothing. A sweep every ``sweep_interval``
    seconds frees expired history and idle streams (reads and publishes also
    trim expired entries as they go). See the module docstring for the caps.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        meta_ttl: float = 3600.0,
        sweep_interval: float = 5.0,
        max_streams: int = 100_000,
        max_history_bytes: int = 256 * 1024 * 1024,
        max_detached_sessions: int = 1_000_000,
        idempotency_window: float = 300.0,
        max_idempotency_keys: int = 100_000,
    ) -> None:
        self._clock = clock
        self.meta_ttl = meta_ttl
        self.sweep_interval = sweep_interval
        self.max_streams = max_streams
        self.max_history_bytes = max_history_bytes
        self.history_bytes = 0
        self._prefix = secrets.token_urlsafe(6)
        self._epochs = count(1)
        self._empty = f"{self._prefix}0"  # the epoch of every channel with no stream
        self._streams: OrderedDict[str, Stream] = OrderedDict()  # least recently touched first
        self._subs: dict[str, dict[MemoryHandle, None]] = {}
        self._handles: set[MemoryHandle] = set()
        self._presence = Members(clock)
        self.bus = NodeBus(clock)
        self._keys = IdempotencyKeys(idempotency_window, max_idempotency_keys)
        self.sessions = MemorySessionStore(max_detached_sessions, clock)
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryBroker streams={len(self._streams)} subscribed={len(self._subs)}>"

    @property
    def nodes(self) -> int:
        """Handles open on this broker (nodes using it)."""
        return len(self._handles)

    @property
    def streams(self) -> int:
        """Streams held (channels published to and not dropped since)."""
        return len(self._streams)

    def start(
        self, deliver: Deliver, *, uid: str = "", control: Control | None = None
    ) -> MemoryHandle:
        handle = MemoryHandle(self, deliver, uid or secrets.token_hex(8), control)
        self._handles.add(handle)
        self.bus.handles[handle.uid] = handle
        return handle

    # -- streams ---------------------------------------------------------------
    def _new_epoch(self) -> str:
        return f"{self._prefix}{next(self._epochs):x}"

    def _touch(self, channel: str, now: float) -> Stream | None:
        stream = self._streams.get(channel)
        if stream is not None:
            self._streams.move_to_end(channel)
            stream.touched = now
        return stream

    def _create(self, channel: str, now: float) -> Stream:
        if len(self._streams) >= self.max_streams:
            self._evict_stream()
        stream = self._streams[channel] = Stream(self._new_epoch(), now)
        self._arm()
        return stream

    def _evict_stream(self) -> None:
        """Drop one stream: unsubscribed without history first, then unsubscribed,
        then any; least recently touched first within each kind."""
        subs, victim = self._subs, None
        for channel, stream in self._streams.items():
            if channel not in subs:
                if not stream.pubs:
                    victim = channel
                    break
                if victim is None:
                    victim = channel
        self._drop(victim if victim is not None else next(iter(self._streams)))

    def _drop(self, channel: str) -> None:
        stream = self._streams.pop(channel)
        self.history_bytes -= stream.forget()

    async def publish(
        self,
        channel: str,
        data: Any,
        *,
        history_size: int,
        history_ttl: float,
        history_bytes: int = 0,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        now = self._clock()
        if idempotency_key is not None:
            seen = self._keys.seen(channel, idempotency_key, now)
            if seen is not None:
                return seen
        stream = self._touch(channel, now) or self._create(channel, now)
        stream.offset += 1
        pub = Publication(channel, stream.offset, stream.epoch, data)
        if history_size > 0 and history_ttl > 0:
            size = len(_size_of(data)) + ENTRY_OVERHEAD
            added = stream.keep(pub, now + history_ttl, size, history_size, history_bytes)
            self.history_bytes += added - stream.trim(now)
            if self.history_bytes > self.max_history_bytes:
                self._shed_history()
        elif stream.pubs:
            self.history_bytes -= stream.forget()
        self._deliver(channel, pub)
        position = StreamPosition(stream.epoch, stream.offset)
        if idempotency_key is not None:
            self._keys.remember(channel, idempotency_key, position, now)
        return position

    def _shed_history(self) -> None:
        """Over ``max_history_bytes``: drop the oldest entries of the least recently
        touched channels until under it."""
        for stream in self._streams.values():
            while stream.pubs and self.history_bytes > self.max_history_bytes:
                self.history_bytes -= stream.drop_oldest()
            if self.history_bytes <= self.max_history_bytes:
                return

    async def publish_event(self, channel: str, event: Join | Leave) -> None:
        self._deliver(channel, event)

    def _deliver(self, channel: str, event: Publication | Join | Leave) -> None:
        handles = self._subs.get(channel)
        if handles:
            for handle in list(handles):
                try:
                    handle.deliver(event)
                except Exception:
                    log.exception("delivering to channel %r failed", channel)

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        now = self._clock()
        stream = self._touch(channel, now)
        if stream is None:
            return HistoryPage(self._empty, 0, [])
        self.history_bytes -= stream.trim(now)
        pubs = stream.pubs
        if limit == 0 or not pubs:
            items: list[Publication] = []
        elif since is None:
            skip = 0 if limit is None else max(0, len(pubs) - limit)
            items = list(islice(pubs, skip, None))
        else:
            start = max(0, since + 1 - pubs[0].offset)
            items = list(islice(pubs, start, None if limit is None else start + limit))
        return HistoryPage(stream.epoch, stream.offset, items)

    async def position(self, channel: str) -> StreamPosition:
        stream = self._touch(channel, self._clock())
        if stream is None:
            return StreamPosition(self._empty, 0)
        return StreamPosition(stream.epoch, stream.offset)

    # -- presence --------------------------------------------------------------
    async def presence_add(self, channel: str, member: Member, ttl: float = 0.0) -> None:
        self._presence.add(channel, member, ttl)
        if ttl > 0:
            self._arm()

    async def presence_remove(self, channel: str, session: str) -> None:
        self._presence.remove(channel, session)

    async def presence_leave(self, session: str, channels: list[str]) -> None:
        self._presence.leave(session, channels)

    async def presence_keep(self, present: list[tuple[str, str]], ttl: float) -> None:
        self._presence.keep(present, ttl)

    async def presence(self, channel: str) -> list[Member]:
        return self._presence.of(channel)

    # -- node subscriptions ----------------------------------------------------
    def _unsubscribe(self, channel: str, handle: MemoryHandle) -> None:
        handles = self._subs.get(channel)
        if handles is not None:
            handles.pop(handle, None)
            if not handles:
                del self._subs[channel]

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._subs.clear()
        self._handles.clear()
        self.bus.handles.clear()

    # -- housekeeping ----------------------------------------------------------
    def _arm(self) -> None:
        if self._timer is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.sweep_interval, self.sweep)

    def sweep(self) -> None:
        """Free expired history and drop idle streams; re-arms itself while streams exist."""
        self._timer = None
        now = self._clock()
        idle_before = now - self.meta_ttl
        gone = []
        for channel, stream in self._streams.items():
            self.history_bytes -= stream.trim(now)
            if not stream.pubs and stream.touched <= idle_before and channel not in self._subs:
                gone.append(channel)
        for channel in gone:
            self._drop(channel)
        self._presence.expire()
        if self._streams or self._presence.expiring:
            self._arm()
