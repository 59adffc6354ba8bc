"""The Redis broker's pub/sub connection: one per broker (per process).

The connection is subscribed to a channel only while the process has local
subscribers for it. Changes asked for in the same turn of the event loop go
out as one ``SUBSCRIBE`` and one ``UNSUBSCRIBE`` command; :meth:`Listener.want`
returns once Redis has confirmed the subscription, so every message published
after that is received. Messages are handed to ``route`` in the order Redis
sent them (per channel: the order of publication).

When the connection is lost, the listener reconnects with backoff and
subscribes again to every channel it wants, then calls ``resumed`` with them
(the broker checks what they missed meanwhile). :meth:`Listener.settle` waits
until everything published before it was called has been handed on (a ``PING``
on this connection: its reply comes after those messages).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import ConnectionPool

__all__ = ["Listener"]

log = logging.getLogger("fastcomm.channels")

_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 2.0
_CONFIRM_TIMEOUT = 10.0


class Listener:
    """Subscriptions of one process on one pub/sub connection.

    ``route(channel, payload)`` receives each message of a wanted channel;
    ``resumed(channels)`` is called after a reconnection resubscribed them;
    ``where`` (host:port) names the server in log lines, never with a password.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        route: Callable[[str, bytes], None],
        resumed: Callable[[list[str]], None],
        where: str,
    ) -> None:
        self._pool = pool
        self._route = route
        self._resumed = resumed
        self.where = where
        self._conn: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._wanted: dict[bytes, str] = {}  # pub/sub name -> channel
        self._sent: set[bytes] = set()  # names whose last command sent was SUBSCRIBE
        self._subscribed: set[bytes] = set()  # names whose last confirmation was "subscribe"
        self._waiting: dict[bytes, asyncio.Future[None]] = {}
        self._dirty: set[bytes] = set()
        self._pings: list[asyncio.Future[None]] = []  # waiting for the next PING to go out
        self._pongs: deque[list[asyncio.Future[None]]] = deque()  # one batch per PING sent
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False
        self.up = True  # False from a lost connection until subscribed again
        self.outages = 0

    def __repr__(self) -> str:
        return f"<Listener {self.where} channels={len(self._wanted)} up={self.up}>"

    @property
    def channels(self) -> int:
        return len(self._wanted)

    async def want(self, name: bytes, channel: str, timeout: float) -> None:
        """Subscribe to ``name`` (``channel``'s pub/sub channel); return once confirmed.
        Raises TimeoutError when Redis has not confirmed within ``timeout``."""
        if name not in self._wanted:
            self._wanted[name] = channel
            self._change(name)
        if name in self._sent and name in self._subscribed:
            return
        waiter = self._waiter(name)
        async with asyncio.timeout(timeout):
            await asyncio.shield(waiter)

    def unwant(self, name: bytes) -> None:
        """Unsubscribe from ``name`` (the command goes out with the others of this turn)."""
        if self._wanted.pop(name, None) is not None:
            self._change(name)
            waiter = self._waiting.pop(name, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # a subscribe still waiting is moot

    async def open(self) -> None:
        """Connect now (not at the first subscription), so that an outage shows in
        :attr:`up` even while no channel is subscribed."""
        if self._conn is None and self.up and not self._closed:
            await self._connected()

    async def settle(self) -> None:
        """Return once the messages published before this call are handed on."""
        if self._conn is None or not self.up:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._pings.append(waiter)
        self._kick()
        await waiter

    def _change(self, name: bytes) -> None:
        self._dirty.add(name)
        self._kick()

    def _kick(self) -> None:
        if self._flusher is None and not self._closed and self.up:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Send what changed since the last flush: one SUBSCRIBE, one UNSUBSCRIBE, one PING."""
        try:
            while self._dirty or self._pings:
                conn = await self._connected()
                names, self._dirty = self._dirty, set()
                wanted, sent = self._wanted, self._sent
                sub = [n for n in names if n in wanted and n not in sent]
                unsub = [n for n in names if n not in wanted and n in sent]
                sent.update(sub)
                sent.difference_update(unsub)
                commands: list[tuple[Any, ...]] = []
                if sub:
                    commands.append(("SUBSCRIBE", *sub))
                if unsub:
                    commands.append(("UNSUBSCRIBE", *unsub))
                if self._pings:
                    self._pongs.append(self._pings)
                    self._pings = []
                    commands.append(("PING",))
                if commands:
                    await conn.send_packed_command(conn.pack_commands(commands), False)
        except Exception as exc:  # noqa: BLE001 - the connection is lost: reconnect
            self._lost(exc)
        finally:
            self._flusher = None
        if (self._dirty or self._pings) and self.up:
            self._kick()

    async def _connected(self) -> Any:
        if self._conn is None:
            pool = self._pool  # a read waits for the next message, as long as it takes
            conn: Any = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
            await conn.connect()
            self._conn = conn
            self._reader = asyncio.get_running_loop().create_task(self._read(conn))
        return self._conn

    async def _read(self, conn: Any) -> None:
        try:
            while True:
                reply = await conn.read_response(disconnect_on_error=False, push_request=True)
                self._handle(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection is lost: reconnect
            if conn is self._conn:
                self._lost(exc)

    def _handle(self, reply: Any) -> None:
        kind = reply[0] if isinstance(reply, list) else reply
        if kind == b"message":
            channel = self._wanted.get(reply[1])
            if channel is not None:
                self._route(channel, reply[2])
        elif kind == b"subscribe":
            self._subscribed.add(reply[1])
            waiter = self._waiting.pop(reply[1], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind == b"unsubscribe":
            self._subscribed.discard(reply[1])
        elif kind in (b"pong", b"PONG") and self._pongs:
            for waiter in self._pongs.popleft():
                if not waiter.done():
                    waiter.set_result(None)

    def _release(self) -> Any:
        """Drop the connection and what depended on it (settle waiters are let go);
        returns the connection, to be disconnected."""
        conn, self._conn = self._conn, None
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        self._reader = None
        self._sent.clear()
        self._subscribed.clear()
        for batch in [*self._pongs, self._pings]:
            for waiter in batch:
                if not waiter.done():
                    waiter.set_result(None)
        self._pongs.clear()
        self._pings = []
        return conn

    @property
    def connected(self) -> bool:
        return self._conn is not None and self.up

    def lost(self, why: BaseException) -> None:
        """The connection is dead though the socket is open (no answer): reconnect."""
        self._lost(why)

    def _lost(self, exc: BaseException) -> None:
        if self._closed or not self.up:
            return
        self.up = False
        self.outages += 1
        log.warning("redis at %s: pub/sub connection lost (%s); reconnecting", self.where, exc)
        old = self._release()
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(old))

    def _waiter(self, name: bytes) -> asyncio.Future[None]:
        waiter = self._waiting.get(name)
        if waiter is None:
            waiter = self._waiting[name] = asyncio.get_running_loop().create_future()
        return waiter

    async def _reconnect(self, old: Any) -> None:
        if old is not None:
            await old.disconnect(nowait=True)
        delay = _BACKOFF_FIRST
        while not self._closed:
            try:
                async with asyncio.timeout(_CONFIRM_TIMEOUT):  # a silent server too
                    await self._connected()
                break
            except Exception:  # noqa: BLE001 - still down: try again later
                conn = self._release()
                if conn is not None:
                    await conn.disconnect(nowait=True)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, _BACKOFF_MAX)
        if self._closed:
            return
        names = list(self._wanted)
        waiters = [asyncio.shield(self._waiter(name)) for name in names]
        self.up = True
        self._dirty.update(names)
        self._kick()
        try:
            async with asyncio.timeout(_CONFIRM_TIMEOUT):
                await asyncio.gather(*waiters)
        except TimeoutError:
            return  # lost again meanwhile: the next reconnection resumes them
        log.warning("redis at %s: pub/sub connection back", self.where)
        channels = [self._wanted[name] for name in names if name in self._wanted]
        if channels:
            self._resumed(channels)

    async def close(self) -> None:
        self._closed = True
        for task in (self._flusher, self._reader, self._reconnecting):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._flusher = None
        conn = self._release()
        if conn is not None:
            await conn.disconnect()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.cancel()
        self._waiting.clear()
        self._wanted.clear()
