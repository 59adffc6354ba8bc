"""A live WebSocket connection as application code sees it.

Sending never blocks and never grows memory without bound: once the
transport's buffer passes ``max_outbound_buffer`` the connection is closed
with 4008 (slow consumer) and further sends are dropped. Paused connections
also share one budget over all of them (``max_total_outbound``). The connection
knows its socket only through the :class:`~fastcomm.sessions.transport.Transport`
interface.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastcomm.errors import CloseCode
from fastcomm.protocol.codec import Codec
from fastcomm.protocol.frames import close_reason
from fastcomm.protocol.messages import ErrorReply
from fastcomm.stats import OutboundBudget

if TYPE_CHECKING:
    from fastcomm.sessions.identity import ConnectRequest
    from fastcomm.sessions.session import Session
    from fastcomm.sessions.transport import Transport
    from fastcomm.stats import Stats

__all__ = ["Connection"]

_CLOSE_TIMEOUT = 5.0  # how long a closing peer gets to answer our CLOSE


class Connection:
    """One accepted WebSocket connection and its session.

    ``session_id``, ``user`` and ``meta`` come from the session; ``request``
    is the upgrade request the connect hook saw; ``subprotocol`` is the
    negotiated encoding. :meth:`send` pushes a message, :meth:`close` starts
    the close handshake. Both are safe to call on a closed connection.

    ``seen``/``idle``/``ping_sent`` are the heartbeat state the node's sweep
    keeps; ``rate_tokens``/``rate_strikes`` the message rate limit's,
    ``frame_tokens`` the frame budget's (transports that see frames spend it).
    ``waiting`` holds the messages that arrived before the connection was
    welcomed (None once it is); ``first`` is True from a welcome that did not
    resume until the first message is routed (a ``resume`` is only valid then).
    """

    __slots__ = (
        "__weakref__",
        "_abort_timer",
        "_budget",
        "_high_water",
        "_stats",
        "_write",
        "closed",
        "codec",
        "first",
        "frame_tokens",
        "idle",
        "paused",
        "ping_sent",
        "rate_strikes",
        "rate_tokens",
        "request",
        "seen",
        "session",
        "transport",
        "waiting",
    )

    def __init__(
        self,
        transport: Transport,
        codec: Codec,
        session: Session,
        request: ConnectRequest,
        *,
        stats: Stats,
        max_outbound: int,
        rate_burst: float,
        frame_burst: float = float("inf"),
        budget: OutboundBudget | None = None,
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.session = session
        self.request = request
        self._stats = stats
        self._write = transport.writer(codec.binary)
        self._abort_timer: asyncio.TimerHandle | None = None
        self._high_water = max_outbound
        self._budget = budget if budget is not None else OutboundBudget(max_outbound)
        self.closed = False
        self.paused = False
        self.rate_tokens = rate_burst
        self.frame_tokens = frame_burst
        self.rate_strikes = 0
        self.first = False
        self.waiting: list[tuple[bool, bytes]] | None = None
        self.seen = True
        self.idle = 0.0
        self.ping_sent = 0.0

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
        if self.closed or (self.paused and not self.reserve(len(data))):
            return False
        self._write(data)
        self._stats.messages_out += 1
        return True

    def reserve(self, size: int) -> bool:
        """May ``size`` more bytes be queued? If not, close as a slow consumer (4008).

        :meth:`send_encoded` asks it while paused, and transports for the frames
        they send on their own (PONG): every byte the server queues counts
        against ``max_outbound_buffer`` (or the connection's share of the total).
        """
        if self.closed:
            return False
        if self.paused and self.transport.buffered() + size > self._budget.limit(self._high_water):
            self._stats.slow_consumers += 1
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer")
            return False
        return True

    def set_paused(self, paused: bool) -> None:
        """The transport's writing is paused (its buffer is above its high-water
        mark) or resumed; paused connections share the server's outbound budget."""
        if paused is not self.paused:
            self.paused = paused
            self._budget.paused += 1 if paused else -1

    def send_error(self, rid: int | None, code: str, message: str, details: Any = None) -> None:
        """Send an ``error`` reply and count it."""
        self._stats.error(code)
        self.send_encoded(self.codec.encode(ErrorReply(rid, code, message, details)))

    # -- closing --------------------------------------------------------------
    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send CLOSE with ``code`` and disconnect once the peer answers (or after 5 s)."""
        if self.closed:
            return
        self.closed = True
        self.transport.close(code, close_reason(reason))
        if code not in (CloseCode.NORMAL, CloseCode.GOING_AWAY):
            self._stats.error(str(code))
        loop = asyncio.get_running_loop()
        self._abort_timer = loop.call_later(_CLOSE_TIMEOUT, self.transport.abort)

    def fail(self, code: int, reason: str) -> None:
        """Close for a protocol violation: send CLOSE and drop the TCP connection now."""
        self.close(code, reason)
        self.transport.disconnect()

    def disconnected(self) -> None:
        """The transport is gone: nothing more is sent, the close timer stops."""
        self.set_paused(False)
        self.closed = True
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
