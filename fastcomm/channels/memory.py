"""The in-memory broker: the embedded default for a single process.

Every channel has a stream: a random epoch drawn when the stream is created,
the top offset and a bounded history. A new broker (a restarted process)
draws new epochs, so clients see that history was lost. Publications are
delivered synchronously, inside :meth:`MemoryBroker.publish`, after being
stored; that makes every operation effectively atomic on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from fastcomm.channels.broker import Deliver, HistoryPage, StreamPosition
from fastcomm.protocol.channel_messages import Join, Leave, Member, Publication

__all__ = ["MemoryBroker"]

log = logging.getLogger("fastcomm.channels")


_NO_PUBS: deque[Publication] = deque()  # shared, never written: a stream with no history
_NO_EXPIRES: deque[float] = deque()


class _Stream:
    """One channel's numbering and history (``pubs`` and their ``expires``, in step).

    A stream only read so far (subscribed, never published) holds just its
    epoch and offset 0: the history buffers are made on the first publication
    that keeps history, so subscriptions to silent channels cost a few hundred
    bytes, not a history each.
    """

    __slots__ = ("epoch", "expires", "offset", "pubs", "touched")

    def __init__(self, epoch: str, now: float) -> None:
        self.epoch = epoch
        self.offset = 0
        self.pubs: deque[Publication] = _NO_PUBS
        self.expires: deque[float] = _NO_EXPIRES
        self.touched = now

    def keep(self, pub: Publication, until: float, size: int) -> None:
        """Store ``pub`` until ``until``, keeping at most ``size`` publications."""
        if self.pubs is _NO_PUBS:
            self.pubs, self.expires = deque(), deque()
        pubs, expires = self.pubs, self.expires
        pubs.append(pub)
        expires.append(until)
        while len(pubs) > size:
            pubs.popleft()
            expires.popleft()

    def forget(self) -> None:
        self.pubs, self.expires = _NO_PUBS, _NO_EXPIRES

    def trim(self, now: float) -> None:
        expires, pubs = self.expires, self.pubs
        while expires and expires[0] <= now:
            expires.popleft()
            pubs.popleft()


class MemoryBroker:
    """A :class:`~fastcomm.channels.broker.Broker` held in this process.

    ``clock`` is the time source for history TTLs (monotonic seconds).
    A stream with no retained history, no subscription of this node and no
    activity for ``meta_ttl`` seconds is dropped; the channel then starts a
    new epoch, which is what makes an idle channel cost nothing. A sweep
    every ``sweep_interval`` seconds frees expired history and idle streams
    (reads and publishes also trim expired entries as they go).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        meta_ttl: float = 3600.0,
        sweep_interval: float = 5.0,
    ) -> None:
        self._clock = clock
        self.meta_ttl = meta_ttl
        self.sweep_interval = sweep_interval
        self._streams: dict[str, _Stream] = {}
        self._subs: dict[str, Deliver] = {}
        self._presence: dict[str, dict[str, Member]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryBroker streams={len(self._streams)} subscribed={len(self._subs)}>"

    # -- streams ---------------------------------------------------------------
    def _stream(self, channel: str, now: float) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(secrets.token_urlsafe(6), now)
            self._arm()
        else:
            stream.touched = now
        return stream

    async def publish(
        self, channel: str, data: Any, *, history_size: int, history_ttl: float
    ) -> StreamPosition:
        now = self._clock()
        stream = self._stream(channel, now)
        stream.offset += 1
        pub = Publication(channel, stream.offset, stream.epoch, data)
        if history_size > 0 and history_ttl > 0:
            stream.keep(pub, now + history_ttl, history_size)
            stream.trim(now)
        elif stream.pubs:
            stream.forget()
        self._deliver(channel, pub)
        return StreamPosition(stream.epoch, stream.offset)

    async def publish_event(self, channel: str, event: Join | Leave) -> None:
        self._deliver(channel, event)

    def _deliver(self, channel: str, event: Publication | Join | Leave) -> None:
        deliver = self._subs.get(channel)
        if deliver is not None:
            try:
                deliver(event)
            except Exception:
                log.exception("delivering to channel %r failed", channel)

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        now = self._clock()
        stream = self._stream(channel, now)
        stream.trim(now)
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
        stream = self._stream(channel, self._clock())
        return StreamPosition(stream.epoch, stream.offset)

    # -- presence --------------------------------------------------------------
    async def presence_add(self, channel: str, member: Member) -> None:
        self._presence.setdefault(channel, {})[member.session] = member

    async def presence_remove(self, channel: str, session: str) -> None:
        members = self._presence.get(channel)
        if members is not None and members.pop(session, None) is not None and not members:
            del self._presence[channel]

    async def presence(self, channel: str) -> list[Member]:
        members = self._presence.get(channel)
        return list(members.values()) if members else []

    # -- node subscriptions ----------------------------------------------------
    async def subscribe(self, channel: str, deliver: Deliver) -> None:
        self._subs[channel] = deliver

    async def unsubscribe(self, channel: str) -> None:
        self._subs.pop(channel, None)

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._subs.clear()

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
            stream.trim(now)
            if not stream.pubs and stream.touched <= idle_before and channel not in self._subs:
                gone.append(channel)
        for channel in gone:
            del self._streams[channel]
        if self._streams:
            self._arm()
