"""Channel subscriptions on top of the client façade: routing, re-subscribing, gap fills.

:class:`SubscribingClient` adds :meth:`~SubscribingClient.subscribe` and
:meth:`~SubscribingClient.publish` to :class:`~fastcomm.client.single.SingleClient`
and keeps one :class:`~fastcomm.client.subscription.Subscription` per
channel. Pushes of a subscribed channel (``message``, ``join``, ``leave``,
and the ``subscribed``/``unsubscribed`` with ``"id": null`` of a resumed
session) go to its subscription; every other push, including those of
channels subscribed by hand with ``request(Subscribe(...))``, goes to the
client's inbox as before.

Connection bookkeeping for the reconnecting layer above: ``_gen`` counts lost
connections (background work started for one connection stops once it
changes), ``_ready`` is set while a live connection is current, ``_finished``
is the ConnectionClosed that ended the client. Here, without reconnect, a
lost connection ends the client and every subscription.

A subscription is registered before its ``subscribe`` is sent and buffers
publications until the reply is taken (they are pushed before the awaiting
coroutine resumes). Gaps in the offsets, restored subscriptions whose top is
ahead of the client, and re-subscribing on a new session are handled by
:mod:`fastcomm.client.gapfill`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Coroutine, Iterable, Mapping
from ssl import SSLContext
from types import MappingProxyType
from typing import Any

from fastcomm.client.codec import Decoded
from fastcomm.client.connection import ABNORMAL, DEFAULT_MAX_MESSAGE_SIZE, ClientConnection
from fastcomm.client.gapfill import fill_gap, resubscribe
from fastcomm.client.single import SingleClient
from fastcomm.client.subscription import Subscription, SubscriptionClosed
from fastcomm.errors import ClientError, CloseCode, ConnectionClosed, ErrorCode, RequestFailed
from fastcomm.protocol.channel_messages import (
    Join,
    Leave,
    Publication,
    Publish,
    Published,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
)
from fastcomm.protocol.codec import JSON_SUBPROTOCOL
from fastcomm.protocol.frames import close_reply
from fastcomm.protocol.messages import Message

__all__ = ["SubscribingClient"]


class SubscribingClient(SingleClient):
    """The client with channel subscriptions; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        subprotocol: str = JSON_SUBPROTOCOL,
        headers: Mapping[str, str] | None = None,
        types: Iterable[type[Message]] = (),
        timeout: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        ssl: SSLContext | None = None,
    ) -> None:
        super().__init__(
            url,
            subprotocol=subprotocol,
            headers=headers,
            types=types,
            timeout=timeout,
            max_message_size=max_message_size,
            ssl=ssl,
        )
        self._subs: dict[str, Subscription] = {}
        self._dropped: set[str] = set()  # unsubscribed while the server may restore them
        self._tasks: set[asyncio.Task[None]] = set()
        self._undoing: dict[str, asyncio.Task[None]] = {}  # channel -> its quiet unsubscribe
        self._gen = 0
        self._ready = asyncio.Event()
        self._finished: ConnectionClosed | None = None
        self._closing = False

    @property
    def subscriptions(self) -> Mapping[str, Subscription]:
        """The active subscriptions by channel (read-only view)."""
        return MappingProxyType(self._subs)

    # -- public API -----------------------------------------------------------------
    async def subscribe(
        self, channel: str, *, recover: bool = True, timeout: float | None = 10.0
    ) -> Subscription:
        """Subscribe to ``channel`` and return its :class:`Subscription`.

        ``recover=False`` skips recovery when re-subscribing on a new session
        (a live-only feed); a resumed session is recovered by the server
        anyway. Raises :class:`~fastcomm.errors.ClientError` if already
        subscribed, :class:`~fastcomm.errors.RequestFailed` when refused
        (``forbidden``, ``invalid_message``, ``limit_exceeded``, ...), and
        what :meth:`request` raises. Waits first (within ``timeout``) until an
        abandoned (timed out, cancelled) subscribe to ``channel`` is undone.
        """
        undo = self._undoing.get(channel)  # the server must forget that one first
        if undo is not None and (await asyncio.wait({undo}, timeout=timeout))[1]:
            raise TimeoutError(f"still undoing an abandoned subscribe to {channel!r}")
        if channel in self._subs:
            raise ClientError(f"already subscribed to {channel!r}")
        sub = Subscription(self, channel, recover=recover)
        self._subs[channel] = sub
        self._dropped.discard(channel)
        try:
            reply = await self.request(Subscribe(channel=channel), timeout)
        except RequestFailed as exc:
            if exc.code == ErrorCode.ALREADY_SUBSCRIBED and sub.epoch is not None:
                return sub  # a resumed session restored it first
            self._forget(sub, str(exc))
            raise
        except ConnectionClosed:
            self._forget(sub, "connection closed")
            self._dropped.add(channel)  # the server may have subscribed: a resume restores it
            raise
        except BaseException:  # timeout, cancelled: the server may subscribe it later
            self._forget(sub, "subscribe abandoned")
            self._unsubscribe_later(channel, self._gen)
            raise
        if not isinstance(reply, Subscribed):
            self._forget(sub, "unexpected reply")
            raise ClientError(f"expected a subscribed reply, got {reply!r}")
        if self._owns(sub):
            sub._apply(reply)
            self._follow(sub, sub._release())
        return sub

    async def publish(self, channel: str, data: Any, timeout: float | None = 10.0) -> int:
        """Publish ``data`` to ``channel``; returns its offset. Raises what :meth:`request` does."""
        reply = await self.request(Publish(channel=channel, data=data), timeout)
        if not isinstance(reply, Published):
            raise ClientError(f"expected a published reply, got {reply!r}")
        return reply.offset

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close for good: no reconnect; every subscription ends."""
        if close_reply(struct.pack("!H", code))[0] != code:
            raise ValueError(f"{code} is not a close code a client may send")
        self._closing = True
        self._cancel_background()
        await super().close(code, reason)
        self._end(ConnectionClosed(code, reason))  # no-op if the connection's end did it

    # -- connection lifecycle -------------------------------------------------------
    async def _open(self, resume: str | None = None) -> ClientConnection:
        conn = await super()._open(resume)
        self._ready.set()
        return conn

    def _on_connection_closed(self, conn: ClientConnection) -> None:
        if conn is self._conn:
            self._lost()
            code = conn.close_code if conn.close_code is not None else ABNORMAL
            self._end(ConnectionClosed(code, conn.close_reason))

    def _lost(self) -> None:
        """The current connection is gone (or an attempt failed): stop its work."""
        self._gen += 1
        self._ready.clear()
        for sub in self._subs.values():
            sub._reset()

    def _end(self, exc: ConnectionClosed) -> None:
        """End the client: the inbox, every subscription, waiting requests."""
        if self._finished is not None:
            return
        self._finished = exc
        self._gen += 1
        self.inbox.close(exc)
        subs, self._subs = list(self._subs.values()), {}
        for sub in subs:
            sub._end(exc)
        self._ready.set()  # wake the waiters: they find the client finished
        self._cancel_background()

    def _cancel_background(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _conn_for(self, gen: int) -> ClientConnection | None:
        """The live connection of generation ``gen`` once adopted; None once it is gone."""
        while self._gen == gen and self._finished is None:
            if self._ready.is_set():
                return self.connection
            await self._ready.wait()
        return None

    def _owns(self, sub: Subscription, gen: int | None = None) -> bool:
        return self._subs.get(sub.channel) is sub and (gen is None or gen == self._gen)

    # -- pushes ---------------------------------------------------------------------
    def _on_push(self, msg: Decoded) -> None:
        if isinstance(msg, Publication):
            sub = self._subs.get(msg.channel)
            if sub is not None:
                self._follow(sub, sub._deliver(msg))
                return
        elif isinstance(msg, Join | Leave):
            sub = self._subs.get(msg.channel)
            if sub is not None:
                sub._event(msg)
                return
        elif isinstance(msg, Subscribed) and msg.id is None:
            if self._restored(msg):
                return
        elif isinstance(msg, Unsubscribed) and msg.id is None:
            sub = self._subs.get(msg.channel)
            if sub is not None:
                self._forget(sub, "unsubscribed by the server")
                return
        super()._on_push(msg)

    def _restored(self, reply: Subscribed) -> bool:
        """A resumed session restored ``reply.channel``; False if it is not ours."""
        sub = self._subs.get(reply.channel)
        if sub is None:
            if reply.channel not in self._dropped:
                return False
            self._dropped.discard(reply.channel)
            self._unsubscribe_later(reply.channel, self._gen)
            return True
        behind = reply.recovered and reply.epoch == sub.epoch and reply.offset > sub.offset
        fresh = sub.epoch is None  # its own subscribe is still on the way
        sub._apply(reply)
        if fresh:
            self._follow(sub, sub._release())
        elif behind:
            sub._hold()
            self._spawn(fill_gap(self, sub, self._gen, reply.offset, settle=True))
        return True

    def _follow(self, sub: Subscription, gap: int | None) -> None:
        if gap is not None:
            self._spawn(fill_gap(self, sub, self._gen, gap, settle=False))

    def _unsubscribe_later(self, channel: str, gen: int) -> None:
        self._undoing[channel] = self._spawn(self._quiet_unsubscribe(channel, gen))

    # -- background work ------------------------------------------------------------
    async def _resubscribe_all(self, conn: ClientConnection) -> None:
        """A new session: re-subscribe every established subscription on ``conn``."""
        self._dropped.clear()
        gen = self._gen
        subs = [sub for sub in self._subs.values() if sub.epoch is not None]
        await asyncio.gather(*(resubscribe(self, sub, conn, gen) for sub in subs))

    async def _unsubscribe(self, sub: Subscription, timeout: float | None) -> None:
        if not self._owns(sub):
            return
        self._forget(sub, "unsubscribed")
        if self._finished is not None:
            return
        if not self._ready.is_set():
            self._dropped.add(sub.channel)
            return
        try:
            await self.connection.request(Unsubscribe(channel=sub.channel), timeout)
        except RequestFailed:
            pass  # not_subscribed: the server had dropped it already
        except ConnectionClosed:
            self._dropped.add(sub.channel)

    async def _quiet_unsubscribe(self, channel: str, gen: int) -> None:
        """Make sure the server does not keep ``channel`` we no longer track."""
        conn = await self._conn_for(gen)
        try:
            if conn is not None:
                await conn.request(Unsubscribe(channel=channel), self.timeout)
        except (RequestFailed, TimeoutError):
            pass
        except ConnectionClosed:
            self._dropped.add(channel)
        finally:
            if self._undoing.get(channel) is asyncio.current_task():
                del self._undoing[channel]

    def _forget(self, sub: Subscription, reason: str) -> None:
        if self._owns(sub):
            del self._subs[sub.channel]
        sub._end(SubscriptionClosed(sub.channel, reason))
