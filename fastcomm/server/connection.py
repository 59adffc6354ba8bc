"""A live WebSocket connection as application code sees it.

Sending never blocks and never grows memory without bound: once the
transport's write buffer passes ``max_outbound_buffer`` the connection is
closed with 4008 (slow consumer) and further sends are dropped.
"""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Any

from picows import WSMsgType, WSTransport

from fastcomm.errors import CloseCode
from fastcomm.protocol.codec import Codec
from fastcomm.protocol.messages import ErrorReply

if TYPE_CHECKING:
    from fastcomm.app import ConnectRequest
    from fastcomm.server.runtime import Server as Runtime
    from fastcomm.sessions.session import Session

__all__ = ["Connection"]

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_CLOSE_TIMEOUT = 5.0  # how long a closing peer gets to answer our CLOSE


class Connection:
    """One accepted WebSocket connection and its session.

    ``session_id``, ``user`` and ``meta`` come from the session; ``request``
    is the upgrade request the connect hook saw; ``subprotocol`` is the
    negotiated encoding. :meth:`send` pushes a message, :meth:`close` starts
    the close handshake. Both are safe to call on a closed connection.
    """

    __slots__ = (
        "__weakref__",
        "_abort_timer",
        "_frame",
        "_high_water",
        "_runtime",
        "closed",
        "codec",
        "paused",
        "rate_stamp",
        "rate_strikes",
        "rate_tokens",
        "request",
        "session",
        "transport",
    )

    def __init__(
        self,
        transport: WSTransport,
        codec: Codec,
        session: Session,
        request: ConnectRequest,
        runtime: Runtime,
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.session = session
        self.request = request
        self._runtime = runtime
        self._frame = _BINARY if codec.binary else _TEXT
        self._abort_timer: asyncio.TimerHandle | None = None
        self._high_water = runtime.config.max_outbound_buffer
        self.closed = False
        self.paused = False
        self.rate_tokens = float(runtime.config.rate_burst)
        self.rate_stamp = 0.0
        self.rate_strikes = 0

    # -- identity -------------------------------------------------------------
    @property
    def session_id(self) -> str:
        return self.session.id

    @property
    def user(self) -> str | None:
        return self.session.user

    @property
    def meta(self) -> Any:
        return self.session.meta

    @property
    def subprotocol(self) -> str:
        return self.codec.name

    @property
    def peer(self) -> tuple[str, int] | None:
        return self.request.peer

    def __repr__(self) -> str:
        return f"<Connection session={self.session.id} user={self.session.user!r}>"

    # -- sending --------------------------------------------------------------
    def send(self, msg: Any) -> bool:
        """Encode ``msg`` (a Struct or any msgspec-encodable object) and send it.

        Returns False if the connection is closed or was just closed as a slow
        consumer.
        """
        return self.send_encoded(self.codec.encode(msg))

    def send_encoded(self, data: bytes) -> bool:
        """Send bytes already encoded with this connection's codec."""
        if self.closed:
            return False
        if self.paused and self._buffered() + len(data) > self._high_water:
            self._runtime.stats.slow_consumers += 1
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer")
            return False
        self.transport.send(self._frame, data)
        self._runtime.stats.messages_out += 1
        return True

    def send_error(self, rid: int | None, code: str, message: str, details: Any = None) -> None:
        """Send an ``error`` reply and count it."""
        self._runtime.stats.error(code)
        self.send_encoded(self.codec.encode(ErrorReply(rid, code, message, details)))

    def _buffered(self) -> int:
        size: int = self.transport.underlying_transport.get_write_buffer_size()
        return size

    # -- closing --------------------------------------------------------------
    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send CLOSE with ``code`` and disconnect once the peer answers (or after 5 s)."""
        if self.closed:
            return
        self.closed = True
        payload = struct.pack("!H", code) + reason.encode()[:123]
        self.transport.send(_CLOSE, payload)
        if code not in (CloseCode.NORMAL, CloseCode.GOING_AWAY):
            self._runtime.stats.error(str(code))
        loop = asyncio.get_running_loop()
        self._abort_timer = loop.call_later(_CLOSE_TIMEOUT, self.transport.disconnect, False)

    def fail(self, code: int, reason: str) -> None:
        """Close for a protocol violation: send CLOSE and drop the TCP connection now."""
        self.close(code, reason)
        self.transport.disconnect()

    def _on_disconnected(self) -> None:
        self.closed = True
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
