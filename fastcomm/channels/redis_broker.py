"""The Redis broker: channel state shared by every process using one Redis.

Numbering, history and delivery of a publication are one Lua script
(:data:`~fastcomm.channels.redis_scripts.PUBLISH`): the meta hash holds the
epoch and the top offset, the stream holds the history (the offset is the
entry id), and the encoded publication is published on the channel's pub/sub
channel after it is stored. A missing meta hash (never published, expired
after ``meta_ttl``, Redis restarted without its data) starts a new epoch, so
lost history is visible to clients. History entries carry their deadline
(``clock``: wall-clock seconds, shared by the nodes), checked on every read.

Each process has one pub/sub connection
(:class:`~fastcomm.channels.redis_listener.Listener`), subscribed to a channel
while one of its nodes has; a message is decoded once and given to each node
subscribed. :meth:`RedisBroker.publish` returns once the publication has also
been delivered to this process's subscribed nodes (as the memory broker does;
bounded by ``publish_timeout``), so a client's own publication reaches it
before the ``published`` reply.

Failures raise (the routes answer ``unavailable``); every command is bounded by
``publish_timeout``. Log lines and errors name the server as host:port, never
with its password. Presence is in :mod:`fastcomm.channels.redis_presence`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from fastcomm.channels.broker import Control, Deliver, HistoryPage, StreamPosition
from fastcomm.channels.memory import ENTRY_OVERHEAD
from fastcomm.channels.redis_arrivals import Arrivals
from fastcomm.channels.redis_handle import CONTROL, RedisHandle
from fastcomm.channels.redis_listener import Listener
from fastcomm.channels.redis_nodes import ControlRoutes, RedisNodes, where
from fastcomm.channels.redis_presence import RedisPresence
from fastcomm.channels.redis_scripts import HISTORY, PUBLISH, decode_event, encode_event, keys_of
from fastcomm.channels.redis_sessions import RedisSessionStore
from fastcomm.channels.redis_upkeep import check_health, keep_positions, resume_missed
from fastcomm.protocol.channel_messages import Join, Leave, Publication

__all__ = ["EMPTY_EPOCH", "RedisBroker", "RedisUnavailable"]

log = logging.getLogger("fastcomm.channels")

EMPTY_EPOCH = "0"
"""The epoch of a channel with no stream (never a real one: those are Redis times in hex)."""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class RedisUnavailable(ConnectionError):
    """Redis could not be reached; the message names it as host:port."""


class RedisBroker(RedisPresence):
    """A :class:`~fastcomm.channels.broker.Broker` on the Redis at ``url``
    (``redis://``, ``rediss://`` or ``unix://``).

    ``prefix`` starts every key and pub/sub channel (several apps can share one
    Redis); ``meta_ttl`` is how long a channel's position outlives its last
    publication; ``publish_timeout`` bounds every command; at most
    ``max_connections`` commands are in flight at once (others wait for a
    connection, within the timeout), plus the pub/sub connection, pinged every
    ``health_interval`` seconds. No I/O happens
    before the first use (:meth:`ping` checks the server).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "fastcomm:",
        meta_ttl: float = 3600.0,
        publish_timeout: float = 5.0,
        max_connections: int = 64,
        health_interval: float = 5.0,
        idempotency_window: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=publish_timeout,
            socket_connect_timeout=publish_timeout,
            socket_timeout=publish_timeout,
        )
        self.redis = self._redis = Redis(connection_pool=pool)
        super().__init__(self._redis, prefix, clock, publish_timeout)
        self._tasks: set[asyncio.Task[None]] = set()
        self._upkeep = False
        self.health_interval = health_interval
        self.where = where(pool)
        self.meta_ttl = meta_ttl
        self.idempotency_window = idempotency_window
        self.publish_timeout = publish_timeout
        self._publish = self._redis.register_script(PUBLISH)
        self._history = self._redis.register_script(HISTORY)
        self._subs: dict[str, dict[RedisHandle, None]] = {}
        self._names: dict[str, bytes] = {}
        self._handles: set[RedisHandle] = set()
        self.listener = Listener(pool, self._route, self._resumed, self.where)
        self.sessions = RedisSessionStore(self._redis, prefix, publish_timeout, clock)
        self.registry = RedisNodes(self._redis, prefix, publish_timeout, clock)
        self.arrivals = Arrivals()
        self.routes = ControlRoutes(self.registry, self.listener, publish_timeout, self.where)
        self.reconnects = 0  # pub/sub reconnections: Redis may have come back empty

    def __repr__(self) -> str:
        return f"<RedisBroker {self.where} subscribed={len(self._subs)}>"

    @property
    def nodes(self) -> int:
        """Handles open on this broker (nodes using it)."""
        return len(self._handles)

    @property
    def up(self) -> bool:
        """False while the pub/sub connection is lost (until resubscribed)."""
        return self.listener.up

    @property
    def outages(self) -> int:
        """Times the pub/sub connection was lost."""
        return self.listener.outages

    def start(
        self, deliver: Deliver, *, uid: str = "", control: Control | None = None
    ) -> RedisHandle:
        handle = RedisHandle(self, deliver, uid or secrets.token_hex(8), control)
        self._handles.add(handle)
        return handle

    async def ping(self) -> None:
        """Check that Redis answers, and open the pub/sub connection;
        :class:`RedisUnavailable` naming host:port if Redis does not answer."""
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self._redis.ping()
        except (AuthenticationError, ResponseError) as exc:
            raise RedisUnavailable(f"redis at {self.where} refused: {exc}") from None
        except (OSError, TimeoutError, RedisError) as exc:
            raise RedisUnavailable(f"redis at {self.where} is unreachable: {exc}") from None
        await self.listener.open()
        self._start_upkeep()

    # -- streams ---------------------------------------------------------------
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
        body = _encode(data)
        keep = history_size if history_size > 0 and history_ttl > 0 else 0
        base = keys_of(self.prefix, channel)
        args = (
            body,
            keep,
            int((now + history_ttl) * 1000),
            history_bytes if keep else 0,
            int(self.meta_ttl * 1000),
            max(1, int(history_ttl * 1000)),
            len(body) + ENTRY_OVERHEAD,
            int(now * 1000),
            base,
            int(self.idempotency_window * 1000) if idempotency_key is not None else 0,
        )
        keys = (base + ".m", base + ".s", f"{base}.i.{idempotency_key or ''}")
        async with asyncio.timeout(self.publish_timeout):
            epoch, offset = await self._publish(keys=keys, args=args)
        name = epoch.decode()
        if channel in self._subs and self.listener.up:  # our own copy comes back: wait for it
            await self.arrivals.wait(channel, name, offset, self.publish_timeout)
        return StreamPosition(name, offset)

    async def publish_event(self, channel: str, event: Join | Leave) -> None:
        payload = encode_event(event)
        async with asyncio.timeout(self.publish_timeout):
            await self._redis.publish(keys_of(self.prefix, channel), payload)
            if channel in self._subs:  # this process's subscribers have it (a PING)
                await self.listener.settle()

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        now = int(self._clock() * 1000)
        base = keys_of(self.prefix, channel)
        args = (-1 if since is None else since, -1 if limit is None else limit, now)
        async with asyncio.timeout(self.publish_timeout):
            epoch, top, entries = await self._history(keys=(base + ".m", base + ".s"), args=args)
        if epoch is None:
            return HistoryPage(EMPTY_EPOCH, 0, [])
        name = epoch.decode()
        pubs = [
            Publication(channel, int(ident[:-2]), name, _decode(fields[3]))
            for ident, fields in entries
            if int(fields[1]) > now
        ]
        if since is None:
            pubs.reverse()
        return HistoryPage(name, top, pubs)

    async def position(self, channel: str) -> StreamPosition:
        meta = keys_of(self.prefix, channel) + ".m"
        async with asyncio.timeout(self.publish_timeout):
            epoch, offset = cast(list[Any], await self._redis.hmget(meta, ["e", "o"]))
        if epoch is None:
            return StreamPosition(EMPTY_EPOCH, 0)
        return StreamPosition(epoch.decode(), int(offset))

    # -- node subscriptions ----------------------------------------------------
    @property
    def subscribed(self) -> list[str]:
        """The channels this process's nodes are subscribed to."""
        return list(self._subs)

    async def _join(self, channel: str, handle: RedisHandle) -> None:
        self._subs.setdefault(channel, {})[handle] = None
        self._start_upkeep()
        name = self._names.get(channel)
        if name is None:
            name = self._names[channel] = keys_of(self.prefix, channel).encode()
        await self.listener.want(name, channel, self.publish_timeout)

    def _leave(self, channel: str, handle: RedisHandle) -> None:
        handles = self._subs.get(channel)
        if handles is not None:
            handles.pop(handle, None)
            if not handles:
                del self._subs[channel]
                self.listener.unwant(self._names.pop(channel))
                self.arrivals.forget(channel)

    def _route(self, channel: str, payload: bytes) -> None:
        """One message of ``channel`` from pub/sub: decoded once, given to each node."""
        if channel.startswith(CONTROL):
            self.routes.route(channel, payload)
        elif channel in self._subs:
            try:
                event = decode_event(channel, payload)
            except (msgspec.DecodeError, IndexError, TypeError, ValueError):
                log.warning("redis at %s: undecodable message on channel %r", self.where, channel)
                return
            self.fan_out(channel, event)

    def fan_out(self, channel: str, event: Publication | Join | Leave) -> None:
        if type(event) is Publication:
            self.arrivals.arrived(channel, event.epoch, event.offset)
        for handle in list(self._subs.get(channel, ())):
            try:
                handle.deliver(event)
            except Exception:
                log.exception("delivering to channel %r failed", channel)

    def _resumed(self, channels: list[str]) -> None:
        self.reconnects += 1
        channels = [name for name in channels if not name.startswith(CONTROL)]
        self._spawn(resume_missed(self, channels))

    def _start_upkeep(self) -> None:
        if not self._upkeep:
            self._upkeep = True
            self._spawn(keep_positions(self))
            self._spawn(check_health(self))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.listener.close()
        self._subs.clear()
        self._handles.clear()
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()
