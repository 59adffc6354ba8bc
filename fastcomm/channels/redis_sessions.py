"""Session records in Redis (the :class:`~fastcomm.sessions.record.SessionStore`
of the Redis broker).

A record is the hash ``<prefix>s:{<token>}`` (the token in a hash tag: one
Redis Cluster slot per record) with ``u`` (the user: ``=name``, or ``-`` for
anonymous), ``x`` (the deadline, ms of the broker's clock, checked by every
script; the key's own TTL is that plus a minute, for cleanup) and ``r`` (the
record, MessagePack). A claim is one Lua script that reads, compares the user
and deletes: two claims of one token never both win. A checkpoint replaces
only records still there and not expired, in one pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from fastcomm.sessions.record import SessionRecord

__all__ = ["RedisSessionStore"]

_CLEANUP_MS = 60_000  # a key outlives its deadline this long (clock skew between nodes)

# KEYS[1] record; ARGV: user, now (ms) -> the record, or nil
CLAIM = """
local found = redis.call('HMGET', KEYS[1], 'u', 'x', 'r')
if not found[1] or found[1] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
if tonumber(found[2]) <= tonumber(ARGV[2]) then return false end
return found[3]
"""

# KEYS[1] record; ARGV: user, deadline (ms), record, key ttl (ms), now (ms)
REPLACE = """
local deadline = redis.call('HGET', KEYS[1], 'x')
if not deadline or tonumber(deadline) <= tonumber(ARGV[5]) then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'x', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(SessionRecord).decode


def _user(user: str | None) -> str:
    return "-" if user is None else "=" + user


class RedisSessionStore:
    """Session records on ``redis`` under ``prefix``; every call is bounded by
    ``timeout``; deadlines are read on ``clock`` (wall-clock seconds)."""

    local = False

    def __init__(
        self, redis: Redis, prefix: str, timeout: float, clock: Callable[[], float]
    ) -> None:
        self._r = redis
        self.prefix = prefix
        self.timeout = timeout
        self.clock = clock
        self._claim = redis.register_script(CLAIM)
        self._replace = redis.register_script(REPLACE)

    def key(self, token: str) -> str:
        return f"{self.prefix}s:{{{token}}}"

    def _ms(self, ttl: float) -> tuple[int, int, int]:
        """(now, deadline, key ttl) in ms."""
        now = int(self.clock() * 1000)
        ttl_ms = max(1, int(ttl * 1000))
        return now, now + ttl_ms, ttl_ms + _CLEANUP_MS

    async def save(self, token: str, record: SessionRecord, ttl: float) -> None:
        if ttl <= 0:
            return
        _, deadline, key_ttl = self._ms(ttl)
        key = self.key(token)
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(key, mapping={"u": _user(record.user), "x": deadline, "r": _encode(record)})
        pipe.pexpire(key, key_ttl)
        async with asyncio.timeout(self.timeout):
            await pipe.execute()

    async def checkpoint(self, records: list[tuple[str, SessionRecord]], ttl: float) -> None:
        if not records or ttl <= 0:
            return
        now, deadline, key_ttl = self._ms(ttl)
        pipe = self._r.pipeline(transaction=False)
        for token, record in records:
            args = (_user(record.user), deadline, _encode(record), key_ttl, now)
            await self._replace(keys=(self.key(token),), args=args, client=pipe)
        async with asyncio.timeout(self.timeout):
            await pipe.execute()

    async def claim(self, token: str, user: str | None) -> SessionRecord | None:
        now = int(self.clock() * 1000)
        async with asyncio.timeout(self.timeout):
            found = await self._claim(keys=(self.key(token),), args=(_user(user), now))
        return None if found is None else _decode(found)

    async def revoke(self, token: str) -> None:
        async with asyncio.timeout(self.timeout):
            await self._r.delete(self.key(token))

    def count(self) -> int | None:
        return None  # counting would scan the keyspace
