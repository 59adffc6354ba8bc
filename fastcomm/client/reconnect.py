"""The reconnecting client: :class:`ReconnectingClient`, exported as ``fastcomm.Client``.

::

    client = await fastcomm.Client.connect(url, token="...", on_reconnect=print)
    sub = await client.subscribe("chat:lobby")
    async for pub in sub:   # survives dropped connections: no gap, no duplicate
        ...

Contracts:

* The first connection is not retried: :meth:`ReconnectingClient.connect`
  raises as :meth:`fastcomm.client.single.SingleClient.connect` does.
* When the current connection ends and the client did not close it, the
  client reconnects unless ``reconnect`` is False or the close code says
  retrying cannot help (:func:`~fastcomm.client.backoff.should_reconnect`:
  not after 4003, 1002, 1003, 1007, 1008, 1009, 1010). Attempts wait an
  exponential, fully jittered delay (:class:`~fastcomm.client.backoff.Backoff`,
  plus a pause after 4029) and pass the resume token (``Fastcomm-Resume``).
  A refused upgrade is retried only when transient (503, 429, 5xx); after
  401/403 or once ``max_attempts`` attempts of one outage failed, the client
  gives up.
* Giving up ends the client like a close: the inbox and every subscription
  end with :class:`~fastcomm.errors.ConnectionClosed` carrying the code of
  the lost connection; ``closed`` is then True.
* Once reconnected: on a resumed session the server restores the
  subscriptions (``subscribed`` with ``"id": null``) and the client matches
  them to its :class:`~fastcomm.client.subscription.Subscription` objects;
  on a new session it re-subscribes each with ``recover`` from its last
  position. Either way publications continue in offset order without
  duplicates, and a recovery that failed is reported on the subscription
  (``recovered`` False and a ``RecoveryFailed`` event). Then ``reconnects``
  is incremented and ``on_reconnect(client)`` is called (sync or async).
* Requests in flight when the connection drops fail with ConnectionClosed
  (the server may or may not have handled them). :meth:`request` (and
  ``call``, ``subscribe``, ``publish``) called while reconnecting waits for
  the new connection within its ``timeout`` (TimeoutError), or raises
  ConnectionClosed if the client gives up. ``send`` and ``send_raw`` cannot
  wait: they raise ConnectionClosed while reconnecting.
* The client's inbox (``receive``, ``async for``) goes on across reconnects.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from ssl import SSLContext
from typing import Self

from fastcomm.client.backoff import (
    RATE_LIMITED_PAUSE,
    Backoff,
    should_reconnect,
    should_retry_handshake,
)
from fastcomm.client.channels import SubscribingClient
from fastcomm.client.codec import Decoded
from fastcomm.client.connection import ABNORMAL, DEFAULT_MAX_MESSAGE_SIZE, ClientConnection
from fastcomm.client.single import auth_headers
from fastcomm.errors import CloseCode, ConnectionClosed, HandshakeFailed
from fastcomm.protocol.codec import JSON_SUBPROTOCOL
from fastcomm.protocol.messages import Message

__all__ = ["OnReconnect", "ReconnectingClient"]

log = logging.getLogger("fastcomm.client")

#: ``on_reconnect`` callback: called with the client after each reconnection.
OnReconnect = Callable[["ReconnectingClient"], Awaitable[None] | None]


class ReconnectingClient(SubscribingClient):
    """A client that replaces a lost connection; see the module docstring.

    ``reconnects`` counts successful reconnections; ``backoff`` is the policy
    (its ``attempts`` is the number of attempts of the current outage).
    """

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
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        max_attempts: int | None = None,
        on_reconnect: OnReconnect | None = None,
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
        self.reconnect = reconnect
        self.backoff = Backoff(backoff_initial, backoff_max, max_attempts)
        self.on_reconnect = on_reconnect
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None
        self._again: int | None = None  # the new connection dropped while restoring

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        subprotocol: str = JSON_SUBPROTOCOL,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        resume: str | None = None,
        types: Iterable[type[Message]] = (),
        timeout: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        ssl: SSLContext | None = None,
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        max_attempts: int | None = None,
        on_reconnect: OnReconnect | None = None,
    ) -> Self:
        """Connect as :meth:`fastcomm.client.single.SingleClient.connect` does.

        ``reconnect`` turns automatic reconnection on (the default) or off;
        ``backoff_initial``/``backoff_max`` (seconds) shape the delays,
        ``max_attempts`` bounds the attempts per outage (None: no bound);
        ``on_reconnect`` is called after each reconnection. ValueError for
        an invalid backoff.
        """
        client = cls(
            url,
            subprotocol=subprotocol,
            headers=auth_headers(headers, token),
            types=types,
            timeout=timeout,
            max_message_size=max_message_size,
            ssl=ssl,
            reconnect=reconnect,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            max_attempts=max_attempts,
            on_reconnect=on_reconnect,
        )
        await client._open(resume)
        return client

    # -- state ----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the client closes or gave up; False while a lost connection
        is being replaced."""
        if self._closing or self._finished is not None:
            return True
        return not self.reconnect and self.connection.closed

    @property
    def connected(self) -> bool:
        """True while a live connection is current."""
        return self._ready.is_set() and self._finished is None and not self.connection.closed

    # -- requests -------------------------------------------------------------------
    async def request(self, msg: Message, timeout: float | None = 10.0) -> Decoded:
        """As :meth:`fastcomm.client.single.SingleClient.request`; while reconnecting it
        first waits for the new connection (``timeout`` covers the wait)."""
        async with asyncio.timeout(timeout):
            while not self._ready.is_set():
                await self._ready.wait()
            return await super().request(msg, None)

    # -- reconnecting ---------------------------------------------------------------
    def _on_connection_closed(self, conn: ClientConnection) -> None:
        if conn is not self._conn:
            return
        code = conn.close_code if conn.close_code is not None else ABNORMAL
        stop = self._closing or self._finished is not None or not self.reconnect
        if stop or not should_reconnect(code):
            super()._on_connection_closed(conn)
            return
        log.info("connection closed with %d; reconnecting", code)
        self._lost()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._reconnect(code))
        else:
            self._again = code

    def _cancel_background(self) -> None:
        super()._cancel_background()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _reconnect(self, code: int) -> None:
        try:
            while True:
                self._again = None
                conn = await self._redial(code)
                if conn is None:
                    return
                self.reconnects += 1
                assert conn.welcome is not None
                log.info("reconnected (session resumed: %s)", conn.welcome.resumed)
                if not conn.welcome.resumed:
                    await self._resubscribe_all(conn)
                await self._notify()
                if self._again is None:
                    return
                code = self._again
        except Exception:
            log.exception("reconnecting failed")
            self._end(ConnectionClosed(code, "reconnecting failed"))

    async def _redial(self, code: int) -> ClientConnection | None:
        """Open a new connection with backoff; None (the client ended) on giving up."""
        backoff = self.backoff
        backoff.reset()
        pause = min(backoff.maximum, RATE_LIMITED_PAUSE) if code == CloseCode.RATE_LIMITED else 0.0
        while True:
            delay = backoff.next_delay()
            if delay is None:
                reason = f"gave up reconnecting after {backoff.attempts} attempts"
                self._end(ConnectionClosed(code, reason))
                return None
            await asyncio.sleep(delay + pause)
            pause = 0.0
            if self._closing or self._finished is not None:
                return None
            try:
                return await self._open(self.resume_token)
            except HandshakeFailed as exc:
                if not should_retry_handshake(exc.status):
                    self._end(ConnectionClosed(code, f"reconnecting refused: {exc}"))
                    return None
                log.info("reconnect attempt %d refused: %s", backoff.attempts, exc)
            except (OSError, TimeoutError, ConnectionClosed) as exc:
                log.info("reconnect attempt %d failed: %r", backoff.attempts, exc)
            self._lost()  # a failed attempt may have pushed restored subscriptions

    async def _notify(self) -> None:
        callback = self.on_reconnect
        if callback is None:
            return
        try:
            result = callback(self)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("on_reconnect callback failed")
