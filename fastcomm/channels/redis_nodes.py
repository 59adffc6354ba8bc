"""The node registry and control messages of the Redis broker.

The registry is the hash ``<prefix>{nodes}`` (uid -> the node's info) and the
sorted set ``<prefix>{nodes}.x`` (uid -> deadline, ms of the broker's clock);
a read drops the expired nodes first (one Lua script). Control messages go
over pub/sub: ``<prefix>{nodes}.c`` to every node, ``<prefix>{nodes}.c.<uid>``
to one; each is MessagePack ``[sender uid, data]``, and a node skips its own
broadcasts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
from redis.asyncio import ConnectionPool, Redis

from fastcomm.channels.redis_handle import CONTROL

if TYPE_CHECKING:
    from fastcomm.channels.redis_handle import RedisHandle
    from fastcomm.channels.redis_listener import Listener

__all__ = ["ControlRoutes", "RedisNodes", "decode_control", "where"]

log = logging.getLogger("fastcomm.channels")

# KEYS: hash, zset; ARGV: now (ms) -> flat [uid, info, ...] of the live nodes
NODES = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return redis.call('HGETALL', KEYS[1])
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(tuple[str, bytes]).decode


def where(pool: ConnectionPool) -> str:
    """host:port (or the socket path) of ``pool``'s server, without credentials."""
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def decode_control(payload: bytes) -> tuple[str, bytes]:
    """``(sender, data)`` of a control message; raises msgspec.DecodeError or
    ValidationError for one that is not ours."""
    return _decode(payload)


class RedisNodes:
    """The registry and control channels on ``redis`` under ``prefix``."""

    def __init__(
        self, redis: Redis, prefix: str, timeout: float, clock: Callable[[], float]
    ) -> None:
        self._r = redis
        self.timeout = timeout
        self.clock = clock
        base = f"{prefix}{{nodes}}"
        self.hash, self.expiry = base, base + ".x"
        self.broadcast = base + ".c"
        self._nodes = redis.register_script(NODES)

    def channel_of(self, uid: str) -> str:
        """The pub/sub channel of the control messages addressed to ``uid``."""
        return f"{self.broadcast}.{uid}"

    async def announce(self, uid: str, info: bytes, ttl: float) -> None:
        deadline = int((self.clock() + ttl) * 1000)
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self.hash, uid, info)
        pipe.zadd(self.expiry, {uid: deadline})
        async with asyncio.timeout(self.timeout):
            await pipe.execute()

    async def nodes(self) -> dict[str, bytes]:
        now = int(self.clock() * 1000)
        async with asyncio.timeout(self.timeout):
            flat = await self._nodes(keys=(self.hash, self.expiry), args=(now,))
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    async def forget(self, uid: str) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.hdel(self.hash, uid)
        pipe.zrem(self.expiry, uid)
        async with asyncio.timeout(self.timeout):
            await pipe.execute()

    async def send(self, sender: str, data: bytes, node: str | None) -> None:
        channel = self.broadcast if node is None else self.channel_of(node)
        async with asyncio.timeout(self.timeout):
            await self._r.publish(channel, _encode((sender, data)))


class ControlRoutes:
    """The control messages of a broker's pub/sub connection, to its listening nodes."""

    def __init__(self, registry: RedisNodes, listener: Listener, timeout: float, where: str):
        self.registry = registry
        self.listener = listener
        self.timeout = timeout
        self.where = where
        self.handles: dict[str, RedisHandle] = {}  # uid -> the node's handle

    async def listen(self, handle: RedisHandle) -> None:
        """Route control messages to ``handle`` (once Redis confirmed both channels)."""
        self.handles[handle.uid] = handle
        registry, listener = self.registry, self.listener
        await listener.want(registry.broadcast.encode(), CONTROL, self.timeout)
        name = registry.channel_of(handle.uid).encode()
        await listener.want(name, f"{CONTROL} {handle.uid}", self.timeout)

    def unlisten(self, handle: RedisHandle) -> None:
        if self.handles.get(handle.uid) is handle:
            del self.handles[handle.uid]
            self.listener.unwant(self.registry.channel_of(handle.uid).encode())
            if not self.handles:
                self.listener.unwant(self.registry.broadcast.encode())

    def route(self, channel: str, payload: bytes) -> None:
        """A message of a control channel (``channel`` as :meth:`listen` named it)."""
        try:
            sender, data = decode_control(payload)
        except msgspec.MsgspecError:
            log.warning("redis at %s: undecodable control message", self.where)
            return
        if channel == CONTROL:
            targets = list(self.handles.values())
        else:
            target = self.handles.get(channel[len(CONTROL) + 1 :])
            targets = [] if target is None else [target]
        for handle in targets:
            handle.receive(sender, data)
