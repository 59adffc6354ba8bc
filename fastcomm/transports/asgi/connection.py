"""One accepted ASGI WebSocket: the :class:`~fastcomm.sessions.transport.Transport`.

ASGI sends are coroutines, the core's writes are not. Each connection has
a bounded **outbox** and **one writer task**: ``writer(binary)`` appends to
the outbox and wakes the task (no await on the per-message path); the task
awaits ``websocket.send`` for each message in order, then the
``websocket.close`` if one was asked for. ``buffered()`` is the outbox's
size in bytes and ``conn.paused`` is True while the outbox is not empty, so
the Connection's slow-consumer rule (close 4008 once ``max_outbound_buffer``
would be passed) applies to it. Writes that bypass the Connection (the echo
endpoint) are held to the same bound here.

Reading is the ASGI application's own task (:meth:`AsgiTransport.run`):
each ``websocket.receive`` is one whole message, checked against
``max_message_size`` (close 1009) and handed to ``node.receive`` with its
frame type. The ASGI server reassembles fragments, validates UTF-8 and
answers PINGs; it also keeps the connection alive, so :meth:`ping` returns
False (the node's sweep then sends none).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from fastcomm.errors import CloseCode
from fastcomm.sessions.transport import Write
from fastcomm.transports.asgi.types import Receive, Send

if TYPE_CHECKING:
    from fastcomm.node.admission import Accept
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection

__all__ = ["AsgiTransport"]

log = logging.getLogger("fastcomm.server")


class AsgiTransport:
    """Outbox, writer task and receive loop of one ASGI WebSocket connection."""

    __slots__ = (
        "_close",
        "_finish",
        "_limit",
        "_max_message",
        "_outbox",
        "_peer",
        "_reader",
        "_send",
        "_size",
        "_stopping",
        "_wake",
        "_writer",
        "conn",
        "gone",
        "node",
    )

    def __init__(self, node: Node, send: Send, peer: tuple[str, int] | None) -> None:
        self.node = node
        self.conn: Connection | None = None
        self.gone = False  # the ASGI connection is over: every call is a no-op
        config = node.config
        self._send = send
        self._peer = peer
        self._outbox: deque[tuple[bool, bytes]] = deque()
        self._size = 0
        # The Connection closes at max_outbound_buffer; this catches writes that bypass it.
        self._limit = config.max_outbound_buffer + config.max_message_size
        self._max_message = config.max_message_size
        self._wake = asyncio.Event()
        self._close: tuple[int, bytes] | None = None
        self._finish = False  # end the connection as soon as the close is sent
        self._stopping = False  # our own cancellation of the receive loop
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[object] | None = None

    # -- driving it ---------------------------------------------------------------
    async def run(self, accept: Accept, receive: Receive) -> None:
        """Attach to the node, then read until the peer or the server is done."""
        node = self.node
        self._reader = asyncio.current_task()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        conn = self.conn = node.attach(self, accept)
        conn.set_paused(bool(self._outbox))
        try:
            await self._read_loop(conn, receive)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception:
            # The server gave up on the connection (its receive raised); it is gone.
            log.debug("receive failed", exc_info=True)
        finally:
            self._end()
            node.detach(conn)

    async def _read_loop(self, conn: Connection, receive: Receive) -> None:
        on_message = self.node.receive
        max_message = self._max_message
        while not self._stopping:
            event = await receive()
            kind = event.get("type")
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            conn.seen = True
            if conn.closed:
                continue  # data after our CLOSE is ignored
            text = event.get("text")
            if text is not None:
                payload, binary = text.encode("utf-8", "replace"), False
            else:
                payload, binary = bytes(event.get("bytes") or b""), True
            if len(payload) > max_message:
                conn.fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
                continue
            try:
                on_message(conn, binary, payload)
            except Exception:
                log.exception("unexpected error while handling a message")
                conn.close(CloseCode.INTERNAL_ERROR, "internal error")

    async def _write_loop(self) -> None:
        send, outbox = self._send, self._outbox
        try:
            while True:
                while outbox:
                    binary, data = outbox.popleft()
                    if binary:
                        await send({"type": "websocket.send", "bytes": data})
                    else:
                        await send({"type": "websocket.send", "text": data.decode()})
                    self._size -= len(data)
                conn = self.conn
                if conn is not None:
                    conn.set_paused(False)
                if self._close is not None:
                    code, reason = self._close
                    await send({"type": "websocket.close", "code": code, "reason": reason.decode()})
                    if self._finish:
                        self._stop_reading()
                    return
                self._wake.clear()
                await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The peer went away mid-send; the receive loop hears the disconnect.
            log.debug("send failed", exc_info=True)
            outbox.clear()
            self._size = 0

    def _stop_reading(self) -> None:
        reader = self._reader
        if self.gone or reader is None or reader.done() or self._stopping:
            return
        self._stopping = True
        if reader is not asyncio.current_task():
            reader.cancel()  # it waits in receive(): the only await of the read loop
        # else: the read loop is running and stops after this message.

    def _end(self) -> None:
        self.gone = True
        self._outbox.clear()
        self._size = 0
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()

    def _overflow(self) -> None:
        conn = self.conn
        if conn is not None and not conn.closed:
            self.node.stats.slow_consumers += 1
            conn.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    # -- Transport ------------------------------------------------------------------
    def writer(self, binary: bool) -> Write:
        outbox, wake = self._outbox, self._wake

        def write(data: bytes) -> None:
            if self.gone or self._close is not None:
                return
            size = self._size + len(data)
            if size > self._limit:
                self._overflow()
                return
            self._size = size
            outbox.append((binary, data))
            conn = self.conn
            if conn is not None:
                conn.set_paused(True)
            wake.set()

        return write

    def buffered(self) -> int:
        return self._size

    def close(self, code: int, reason: bytes) -> None:
        """Queue ``websocket.close`` after what the outbox holds."""
        if not self.gone and self._close is None:
            self._close = (code, reason)
            self._wake.set()

    def disconnect(self) -> None:
        """End the connection once the outbox and the close are sent."""
        if self.gone:
            return
        self._finish = True
        writer = self._writer
        if self._close is None or writer is None or writer.done():
            self._stop_reading()
        else:
            self._wake.set()

    def abort(self) -> None:
        """Drop what is queued and end the connection now (the server closes the socket)."""
        if self.gone:
            return
        self._stop_reading()
        self._end()

    def ping(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<AsgiTransport peer={self._peer} buffered={self._size}>"
