"""Per-connection picows listener: RFC 6455 rules picows leaves to us.

picows delivers raw frames. This listener reassembles fragments, validates
UTF-8 and reserved bits, completes the close handshake, applies the rate
limit and the outbound bound, and hands whole messages to ``on_message``
(the router, or the echo endpoint). A single unfragmented frame takes the
short path: a few attribute checks, then dispatch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from fastcomm.errors import CloseCode, ErrorCode, ProtocolViolation
from fastcomm.protocol.frames import FrameAssembler, close_reply, is_valid_utf8

if TYPE_CHECKING:
    from fastcomm.server.connection import Connection
    from fastcomm.server.runtime import Server as Runtime

__all__ = ["ServerListener"]

log = logging.getLogger("fastcomm.server")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING
_CONTINUATION = WSMsgType.CONTINUATION


class ServerListener(WSListener):
    """Frame handling for one connection; ``conn`` exists once connected.

    ``on_message(conn, binary, payload)`` receives every whole, valid message.
    ``limited`` turns on the per-connection rate limit.
    """

    __slots__ = (
        "assembler",
        "conn",
        "idle",
        "limited",
        "max_size",
        "on_message",
        "pending",
        "ping_sent",
        "runtime",
        "seen",
        "stats",
    )

    def __init__(
        self,
        runtime: Runtime,
        pending: Any,
        on_message: Callable[[Connection, bool, bytes], None],
        limited: bool,
    ) -> None:
        self.runtime = runtime
        self.stats = runtime.stats
        self.pending = pending  # what the handshake decided, until connected
        self.on_message = on_message
        self.limited = limited
        self.max_size = runtime.config.max_message_size
        self.assembler = FrameAssembler(self.max_size)
        self.conn: Connection | None = None
        self.seen = True
        self.idle = 0.0
        self.ping_sent = 0.0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.conn = self.runtime.connected(self, transport)
        self.pending = None

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.conn is not None:
            self.conn._on_disconnected()
            self.runtime.disconnected(self)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.paused = True

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.paused = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.seen = True
        conn = self.conn
        if conn is None:
            return
        msg_type = frame.msg_type
        if not (msg_type is _TEXT or msg_type is _BINARY or msg_type is _CONTINUATION):
            self._on_control(transport, conn, frame, msg_type)
            return
        if conn.closed:
            return  # data after our CLOSE is ignored
        try:
            if (
                frame.fin
                and not self.assembler.in_progress
                and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
                and (msg_type is _TEXT or msg_type is _BINARY)
            ):
                payload = frame.get_payload_as_bytes()
                if len(payload) > self.max_size:
                    raise ProtocolViolation(CloseCode.MESSAGE_TOO_BIG, "message too big")
                binary = msg_type is _BINARY
                if not binary and not payload.isascii() and not is_valid_utf8(payload):
                    raise ProtocolViolation(CloseCode.INVALID_TEXT, "invalid UTF-8")
            else:
                done = self.assembler.feed(
                    msg_type.value,
                    frame.fin,
                    frame.rsv1 or frame.rsv2 or frame.rsv3,
                    frame.get_payload_as_bytes(),
                )
                if done is None:
                    return
                binary = done[0] == 2
                payload = done[1]
        except ProtocolViolation as exc:
            conn.fail(exc.code, exc.reason)
            return
        self.stats.messages_in += 1
        if self.limited:
            conn.rate_tokens -= 1.0
            if conn.rate_tokens < 0.0:
                self._rate_limited(conn, payload)
                return
            if conn.rate_strikes:
                conn.rate_strikes = 0
        try:
            self.on_message(conn, binary, payload)
        except Exception:
            log.exception("unexpected error while handling a message")
            conn.close(CloseCode.INTERNAL_ERROR, "internal error")

    def _on_control(
        self, transport: WSTransport, conn: Connection, frame: WSFrame, msg_type: WSMsgType
    ) -> None:
        # picows checks opcodes, sizes and fragmentation of control frames, not RSV bits.
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            if not conn.closed:
                conn.fail(CloseCode.PROTOCOL_ERROR, "reserved bits set")
            return
        if msg_type is _CLOSE:
            if not conn.closed:
                code, reason = close_reply(frame.get_payload_as_bytes())
                conn.close(code, reason.decode("utf-8", "replace"))
            transport.disconnect()
        elif msg_type is _PING and not conn.closed:
            # Auto-pong is off so that no PONG follows our CLOSE.
            transport.send_pong(frame.get_payload_as_bytes())

    def _rate_limited(self, conn: Connection, payload: bytes) -> None:
        conn.rate_strikes += 1
        if conn.rate_strikes >= self.runtime.config.rate_limit_close_after:
            conn.close(CloseCode.RATE_LIMITED, "rate limit exceeded")
            return
        conn.send_error(
            conn.codec.request_id(payload), ErrorCode.RATE_LIMITED, "message rate limit exceeded"
        )
