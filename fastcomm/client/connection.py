"""One WebSocket connection from a client to a fastcomm server (transport level).

:class:`ClientConnection` owns the picows transport, the table of pending
requests (id -> Future) and the close handshake. It knows nothing about what
happens to pushes or what to do after the connection ends: it hands every
push to ``on_push`` and reports the end once to ``on_closed``. The public
:class:`fastcomm.client.Client` is a thin façade over it, so features such as
channel subscriptions or reconnect-with-resume can be layered on top (by
routing pushes and replacing the connection) without changing this class.

Contracts:

* :meth:`ClientConnection.open` returns only after the server's ``welcome``
  arrived (``welcome`` is set); it raises
  :class:`~fastcomm.client.handshake.HandshakeFailed` when the
  upgrade is refused, ``TimeoutError`` after ``timeout`` seconds,
  :class:`ConnectionClosed` if the connection ends first, ``OSError`` when the
  server cannot be reached.
* A server message whose integer ``id`` matches a pending request is that
  request's reply (an ``error`` reply fails it with :class:`RequestFailed`);
  replies to requests that timed out or were cancelled are dropped; every
  other message is a push.
* When the connection ends, for any reason: ``close_code``/``close_reason``
  hold what the server sent in its CLOSE frame (1005 for a CLOSE without a
  code, 1006 when the connection dropped without one), every pending request
  fails with :class:`ConnectionClosed`, then ``on_closed`` is called once.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Mapping
from ssl import SSLContext
from typing import Any

import msgspec
from picows import WSMsgType, WSTransport

from fastcomm.client.codec import ClientCodec, Decoded
from fastcomm.client.handshake import dial
from fastcomm.client.listener import ClientListener
from fastcomm.client.pending import PendingRequests
from fastcomm.errors import CloseCode, ConnectionClosed
from fastcomm.protocol.frames import close_reply
from fastcomm.protocol.messages import Message, Welcome

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "ClientConnection"]

log = logging.getLogger("fastcomm.client")

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024  # largest message accepted from the server
CLOSE_TIMEOUT = 5.0  # how long the server gets to answer our CLOSE
NO_STATUS = 1005  # RFC 6455: a CLOSE frame without a status code
ABNORMAL = 1006  # RFC 6455: the connection dropped without a CLOSE frame
_UNSUPPORTED_DATA = 1003


class ClientConnection:
    """One connection: pending requests, pushes to ``on_push``, the close handshake.

    Build it with :meth:`open`. ``welcome`` is the server's first message.
    Sending methods raise :class:`ConnectionClosed` once the connection is
    closing or closed.
    """

    __slots__ = (
        "_abort_timer",
        "_broken",
        "_done",
        "_frame",
        "_pending",
        "_sent_close",
        "_welcome_waiter",
        "close_code",
        "close_reason",
        "codec",
        "on_closed",
        "on_push",
        "transport",
        "welcome",
    )

    def __init__(
        self,
        codec: ClientCodec,
        on_push: Callable[[Decoded], None],
        on_closed: Callable[[ClientConnection], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.codec = codec
        self.on_push = on_push
        self.on_closed = on_closed
        self.transport: WSTransport | None = None
        self.welcome: Welcome | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._frame = WSMsgType.BINARY if codec.binary else WSMsgType.TEXT
        self._pending = PendingRequests()
        self._sent_close: int | None = None
        self._broken = False
        self._abort_timer: asyncio.TimerHandle | None = None
        self._welcome_waiter: asyncio.Future[Welcome] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def open(
        cls,
        url: str,
        codec: ClientCodec,
        *,
        on_push: Callable[[Decoded], None],
        on_closed: Callable[[ClientConnection], None],
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        ssl: SSLContext | None = None,
    ) -> ClientConnection:
        """Connect to ``url``, negotiate ``codec.name`` and wait for ``welcome``."""
        conn = cls(codec, on_push, on_closed)
        try:
            async with asyncio.timeout(timeout):
                await dial(
                    url,
                    codec.name,
                    lambda: ClientListener(conn, max_message_size),
                    headers=headers,
                    timeout=timeout,
                    max_frame_size=max_message_size,
                    ssl=ssl,
                )
                await conn._welcome_waiter
        except BaseException:
            if not conn._welcome_waiter.done():
                conn._welcome_waiter.cancel()  # nobody will await it any more
            conn.abort()
            raise
        return conn

    # -- state ------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the close handshake started or the connection ended."""
        return self._sent_close is not None or self._done.done()

    async def wait_closed(self) -> None:
        """Return once the connection has ended and ``on_closed`` ran."""
        await asyncio.shield(self._done)

    def _check_open(self) -> WSTransport:
        if self.closed or self.transport is None:
            code = self.close_code if self.close_code is not None else self._sent_close
            raise ConnectionClosed(code if code is not None else ABNORMAL, self.close_reason)
        return self.transport

    # -- sending ----------------------------------------------------------------
    def send(self, msg: Any) -> None:
        """Encode ``msg`` and send it as is (a request without ``id`` gets no reply)."""
        self._check_open().send(self._frame, self.codec.encode(msg))

    def send_raw(self, data: bytes | str, *, binary: bool | None = None) -> None:
        """Send ``data`` as one frame: BINARY if ``binary`` else TEXT.

        ``binary=None`` picks TEXT for ``str`` and the subprotocol's frame type
        for ``bytes``. Nothing is validated: this is for testing servers.
        """
        transport = self._check_open()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        if binary is None:
            frame = WSMsgType.TEXT if isinstance(data, str) else self._frame
        else:
            frame = WSMsgType.BINARY if binary else WSMsgType.TEXT
        transport.send(frame, payload)

    async def request(self, msg: Message, timeout: float | None = 10.0) -> Decoded:
        """Send ``msg`` with an id (a fresh one unless it has one) and await its reply."""
        transport = self._check_open()
        pending = self._pending
        rid = msg.id
        if type(rid) is not int:
            rid = pending.new_id()
            msg = msgspec.structs.replace(msg, id=rid)
        data = self.codec.encode(msg)
        future = pending.add(rid)
        try:
            transport.send(self._frame, data)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            pending.release(rid)

    # -- closing ----------------------------------------------------------------
    async def close(
        self, code: int = CloseCode.NORMAL, reason: str = "", timeout: float = CLOSE_TIMEOUT
    ) -> None:
        """Complete the close handshake: send CLOSE, wait for the server's, disconnect.

        Without an answer within ``timeout`` seconds the connection is aborted
        (``close_code`` is then 1006). Safe to call more than once.
        """
        if self._done.done():
            return
        if close_reply(struct.pack("!H", code))[0] != code:
            raise ValueError(f"{code} is not a close code a client may send")
        self._send_close(code, reason)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._done)
        except TimeoutError:
            self.abort()
            await asyncio.shield(self._done)

    def abort(self) -> None:
        """Drop the connection at once, without a close handshake."""
        if self.transport is not None:
            self.transport.disconnect(False)
        else:
            self.disconnected()

    def _send_close(self, code: int, reason: str) -> None:
        if self._sent_close is not None or self.transport is None or self._done.done():
            return
        self._sent_close = code
        self.transport.send(WSMsgType.CLOSE, struct.pack("!H", code) + reason.encode()[:123])

    # -- FrameSink: called by the listener ----------------------------------------
    def connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def message(self, binary: bool, payload: bytes) -> None:
        if self._broken:
            return
        if binary is not self.codec.binary:
            self.violation(_UNSUPPORTED_DATA, f"unexpected {'binary' if binary else 'text'} frame")
            return
        try:
            msg = self.codec.decode(payload)
        except msgspec.DecodeError:
            self.violation(CloseCode.INVALID_TEXT, f"message is not valid {self.codec.name}")
            return
        if self.welcome is None:
            if not isinstance(msg, Welcome):
                self.violation(CloseCode.PROTOCOL_ERROR, "first message is not welcome")
                return
            self.welcome = msg
            if not self._welcome_waiter.done():
                self._welcome_waiter.set_result(msg)
            return
        if not self._pending.resolve(msg):
            self.on_push(msg)

    def close_received(self, payload: bytes) -> None:
        if self.close_code is None:
            if len(payload) >= 2:
                self.close_code = int.from_bytes(payload[:2], "big")
                self.close_reason = payload[2:].decode("utf-8", "replace")
            else:
                self.close_code = NO_STATUS
        if self._sent_close is None:
            self._send_close(close_reply(payload)[0], "")
        if self.transport is not None:
            self.transport.disconnect()

    def violation(self, code: int, reason: str) -> None:
        log.warning("closing connection with %d: server sent bad data (%s)", code, reason)
        self._broken = True
        self._send_close(code, reason)
        if self._abort_timer is None and not self._done.done():
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(CLOSE_TIMEOUT, self.abort)

    def disconnected(self) -> None:
        if self._done.done():
            return
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        if self.close_code is None:
            self.close_code = ABNORMAL
        code, reason = self.close_code, self.close_reason
        if not self._welcome_waiter.done():
            self._welcome_waiter.set_exception(ConnectionClosed(code, reason))
        self._pending.fail_all(lambda: ConnectionClosed(code, reason))
        self._done.set_result(None)
        try:
            self.on_closed(self)
        except Exception:
            log.exception("on_closed callback failed")
