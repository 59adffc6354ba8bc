"""One channel's stream in the in-memory broker: numbering and bounded history."""

from __future__ import annotations

from collections import OrderedDict, deque

from fastcomm.channels.broker import StreamPosition
from fastcomm.protocol.channel_messages import Publication

__all__ = ["IdempotencyKeys", "Stream"]

_NO_PUBS: deque[Publication] = deque()  # shared, never written: a stream with no history
_NO_EXPIRES: deque[float] = deque()
_NO_SIZES: deque[int] = deque()


class Stream:
    """One channel's numbering and history (``pubs``, ``expires`` and ``sizes`` in step)."""

    __slots__ = ("bytes", "epoch", "expires", "offset", "pubs", "sizes", "touched")

    def __init__(self, epoch: str, now: float) -> None:
        self.epoch = epoch
        self.touched = now
        self.offset = 0
        self.pubs: deque[Publication] = _NO_PUBS
        self.expires: deque[float] = _NO_EXPIRES
        self.sizes: deque[int] = _NO_SIZES
        self.bytes = 0

    def keep(self, pub: Publication, until: float, size: int, count: int, limit: int) -> int:
        """Store ``pub`` (``size`` bytes) until ``until``, keeping at most ``count``
        entries and, if ``limit`` > 0, ``limit`` bytes; returns the change in bytes."""
        if self.pubs is _NO_PUBS:
            self.pubs, self.expires, self.sizes = deque(), deque(), deque()
        before = self.bytes
        self.pubs.append(pub)
        self.expires.append(until)
        self.sizes.append(size)
        self.bytes += size
        while len(self.pubs) > count or (limit and self.bytes > limit and len(self.pubs) > 1):
            self.drop_oldest()
        if limit and self.bytes > limit:  # one entry larger than the whole budget
            self.drop_oldest()
        return self.bytes - before

    def drop_oldest(self) -> int:
        self.pubs.popleft()
        self.expires.popleft()
        size = self.sizes.popleft()
        self.bytes -= size
        return size

    def forget(self) -> int:
        freed, self.bytes = self.bytes, 0
        self.pubs, self.expires, self.sizes = _NO_PUBS, _NO_EXPIRES, _NO_SIZES
        return freed

    def trim(self, now: float) -> int:
        """Drop expired entries; returns the bytes freed."""
        expires, freed = self.expires, 0
        while expires and expires[0] <= now:
            freed += self.drop_oldest()
        return freed


class IdempotencyKeys:
    """Publish idempotency keys of a broker: ``(channel, key)`` -> the position of
    the publication made with it, for ``window`` seconds, at most ``cap`` of them (the
    oldest go first)."""

    def __init__(self, window: float, cap: int) -> None:
        self.window = window
        self.cap = cap
        self._seen: OrderedDict[tuple[str, str], tuple[float, StreamPosition]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, channel: str, key: str, now: float) -> StreamPosition | None:
        """The position published with ``key`` on ``channel`` within the window."""
        seen = self._seen
        while seen:  # expired keys go first
            oldest, (until, _) = next(iter(seen.items()))
            if until > now:
                break
            del seen[oldest]
        found = seen.get((channel, key))
        return None if found is None else found[1]

    def remember(self, channel: str, key: str, position: StreamPosition, now: float) -> None:
        if self.window <= 0 or self.cap <= 0:
            return
        seen = self._seen
        seen[(channel, key)] = (now + self.window, position)
        while len(seen) > self.cap:
            del seen[next(iter(seen))]
