"""The in-memory session store: records kept in this process.

Records of live sessions (their ``node`` set) and of detached ones are kept
apart, each in the order of their deadlines (every write gives the same
``ttl`` from now, so the last written expires last). Expired records are
dropped as writes go by; at most ``max_detached`` detached records are kept
(the oldest go first). Live records are bounded by the nodes' connection
limits, and a dead node's by their TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from fastcomm.sessions.record import SessionRecord

__all__ = ["MemorySessionStore"]

_Records = OrderedDict[str, tuple[float, SessionRecord]]


class MemorySessionStore:
    """A :class:`~fastcomm.sessions.record.SessionStore` in this process."""

    local = True  # no coroutine of it ever waits

    def __init__(
        self, max_detached: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_detached = max_detached
        self.clock = clock
        self._live: _Records = OrderedDict()
        self._detached: _Records = OrderedDict()

    def __len__(self) -> int:
        return len(self._live) + len(self._detached)

    @property
    def detached(self) -> int:
        """Records of sessions detached cleanly (no node holds them)."""
        return len(self._detached)

    def _put(self, token: str, record: SessionRecord, deadline: float) -> None:
        self._live.pop(token, None)
        self._detached.pop(token, None)
        if record.node or self.max_detached > 0:
            records = self._live if record.node else self._detached
            records[token] = (deadline, record)

    def _purge(self) -> None:
        now = self.clock()
        for records, cap in ((self._live, None), (self._detached, self.max_detached)):
            while records:
                token, (deadline, _) = next(iter(records.items()))
                if deadline > now and (cap is None or len(records) <= cap):
                    break
                del records[token]

    def _get(self, token: str) -> tuple[float, SessionRecord] | None:
        return self._live.get(token) or self._detached.get(token)

    def peek(self, token: str) -> SessionRecord | None:
        """The record of ``token`` as it stands (expired or not), without claiming it."""
        found = self._get(token)
        return None if found is None else found[1]

    async def save(self, token: str, record: SessionRecord, ttl: float) -> None:
        if ttl > 0:
            self._put(token, record, self.clock() + ttl)
        self._purge()

    async def checkpoint(self, records: list[tuple[str, SessionRecord]], ttl: float) -> None:
        now = self.clock()
        for token, record in records:
            old = self._get(token)
            if old is not None and old[0] > now:
                self._put(token, record, now + ttl)
        self._purge()

    async def claim(self, token: str, user: str | None) -> SessionRecord | None:
        found = self._get(token)
        if found is None or found[1].user != user:
            return None
        self._live.pop(token, None)
        self._detached.pop(token, None)
        deadline, record = found
        return record if deadline > self.clock() else None

    async def revoke(self, token: str) -> None:
        self._live.pop(token, None)
        self._detached.pop(token, None)

    def count(self) -> int:
        return len(self)

    def expire(self) -> int:
        """Drop the records whose time is up; return how many are left."""
        self._purge()
        return len(self)
