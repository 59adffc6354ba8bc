"""A small real ApiBackend on MemoryBroker for the HTTP API tests (and its own checks).

Publications, history and presence are the broker's; sessions are a dict of
session id -> (user, subscribed channels), enough for disconnect, unsubscribe
and channels.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from fastcomm.channels.broker import HistoryPage, StreamPosition
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.namespaces import channel_problem
from fastcomm.http.api import ApiBackend
from fastcomm.protocol.channel_messages import Member


class MemoryBackend:
    def __init__(self, *, history_size: int = 100) -> None:
        self.broker = MemoryBroker()
        self.history_size = history_size
        self.sessions: dict[str, tuple[str | None, set[str]]] = {}
        self.closed: list[tuple[str, int, str]] = []
        self.failing: set[str] = set()  # channels whose publish raises (a backend failure)

    async def join(self, session: str, user: str | None, channel: str, meta: Any = None) -> None:
        self.sessions.setdefault(session, (user, set()))[1].add(channel)
        await self.broker.presence_add(channel, Member(session, user, meta))

    async def publish(
        self, channel: str, data: Any, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        problem = channel_problem(channel, 255)
        if problem is not None:
            raise ValueError(problem)
        if channel in self.failing:
            raise ConnectionError("backend down")
        return await self.broker.publish(
            channel,
            data,
            history_size=self.history_size,
            history_ttl=60.0,
            idempotency_key=idempotency_key,
        )

    async def presence(self, channel: str) -> list[Member]:
        return await self.broker.presence(channel)

    async def history(self, channel: str, *, since: int | None, limit: int | None) -> HistoryPage:
        return await self.broker.history(channel, since=since, limit=limit)

    async def disconnect(
        self, *, user: str | None, session: str | None, code: int, reason: str
    ) -> int:
        targets = [
            sid
            for sid, (owner, _) in self.sessions.items()
            if (session is None or sid == session) and (user is None or owner == user)
        ]
        for sid in targets:
            _, channels = self.sessions.pop(sid)
            for channel in channels:
                await self.broker.presence_remove(channel, sid)
            self.closed.append((sid, code, reason))
        return len(targets)

    async def unsubscribe(self, user: str, channel: str) -> int:
        count = 0
        for sid, (owner, channels) in self.sessions.items():
            if owner == user and channel in channels:
                channels.discard(channel)
                await self.broker.presence_remove(channel, sid)
                count += 1
        return count

    async def channels(self, pattern: str | None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, channels in self.sessions.values():
            for channel in channels:
                if pattern is None or fnmatchcase(channel, pattern):
                    counts[channel] = counts.get(channel, 0) + 1
        return counts

    async def nodes(self) -> list[dict[str, Any]]:
        users = {user for user, _ in self.sessions.values() if user is not None}
        return [
            {
                "uid": "node-1",
                "name": "test",
                "version": "0",
                "num_clients": len(self.sessions),
                "num_users": len(users),
                "num_channels": len(await self.channels(None)),
                "num_subs": sum(len(c) for _, c in self.sessions.values()),
                "uptime": 1,
            }
        ]


def test_memory_backend_satisfies_the_protocol() -> None:
    backend: ApiBackend = MemoryBackend()
    assert isinstance(backend, MemoryBackend)
