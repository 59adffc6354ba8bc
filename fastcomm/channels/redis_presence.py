"""Presence in Redis: a hash of members and a sorted set of their expiry times.

Per channel, ``<prefix>{<channel>}.p`` maps each session to its member
(MessagePack ``[user, meta]``) and ``<prefix>{<channel>}.x`` gives each
session its expiry (ms of the broker's clock; ``inf`` for a member added
without TTL). :meth:`RedisPresence.presence_keep` pushes scores forward (only
those of members still there, never lowering one), and every read drops the
expired members first. The keys themselves expire a TTL after their newest
member's, so a channel whose nodes all died leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from fastcomm.channels.redis_scripts import PRESENCE, PRESENCE_ADD, keys_of
from fastcomm.protocol.channel_messages import Member

__all__ = ["RedisPresence"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class RedisPresence:
    """The presence methods of :class:`~fastcomm.channels.redis_broker.RedisBroker`."""

    def __init__(
        self, redis: Redis, prefix: str, clock: Callable[[], float], timeout: float
    ) -> None:
        self.prefix = prefix
        self._clock = clock
        self._timeout = timeout
        self._r = redis
        self._add = redis.register_script(PRESENCE_ADD)
        self._members = redis.register_script(PRESENCE)

    def _keys(self, channel: str) -> tuple[str, str]:
        base = keys_of(self.prefix, channel)
        return base + ".p", base + ".x"

    async def presence_add(self, channel: str, member: Member, ttl: float = 0.0) -> None:
        expires = int((self._clock() + ttl) * 1000) if ttl > 0 else "inf"
        args = (member.session, _encode((member.user, member.meta)), expires, int(ttl * 1000))
        async with asyncio.timeout(self._timeout):
            await self._add(keys=self._keys(channel), args=args)

    async def presence_remove(self, channel: str, session: str) -> None:
        await self.presence_leave(session, [channel])

    async def presence_leave(self, session: str, channels: list[str]) -> None:
        if not channels:
            return
        pipe = self._r.pipeline(transaction=False)
        for channel in channels:
            members, expiry = self._keys(channel)
            pipe.hdel(members, session)
            pipe.zrem(expiry, session)
        async with asyncio.timeout(self._timeout):
            await pipe.execute()

    async def presence_keep(self, present: list[tuple[str, str]], ttl: float) -> None:
        if not present:
            return
        by_channel: defaultdict[str, list[str]] = defaultdict(list)
        for channel, session in present:
            by_channel[channel].append(session)
        expires, ttl_ms = int((self._clock() + ttl) * 1000), int(ttl * 1000)
        pipe = self._r.pipeline(transaction=False)
        for channel, sessions in by_channel.items():
            members, expiry = self._keys(channel)
            pipe.zadd(expiry, dict.fromkeys(sessions, expires), xx=True, gt=True)
            pipe.pexpire(members, ttl_ms, gt=True)
            pipe.pexpire(expiry, ttl_ms, gt=True)
        async with asyncio.timeout(self._timeout):
            await pipe.execute()

    async def presence(self, channel: str) -> list[Member]:
        now = int(self._clock() * 1000)
        async with asyncio.timeout(self._timeout):
            flat = await self._members(keys=self._keys(channel), args=(now,))
        members = []
        for i in range(0, len(flat), 2):
            user, meta = _decode(flat[i + 1])
            members.append(Member(flat[i].decode(), user, meta))
        return members
