"""Per-connection picows listener: RFC 6455 rules picows leaves to us.

picows delivers raw frames. This listener reassembles fragments (through
the sans-I/O :class:`~fastcomm.protocol.frames.FrameAssembler`), completes
the close handshake, answers PINGs, and hands whole messages to the node
(which counts and rate-limits them). It is also the connection's
:class:`~fastcomm.sessions.transport.Transport`: one object per connection.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from fastcomm.errors import CloseCode, ProtocolViolation
from fastcomm.protocol.frames import FrameAssembler, close_reply
from fastcomm.sessions.transport import Write

if TYPE_CHECKING:
    from fastcomm.node.admission import Accept
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection

__all__ = ["ServerListener"]

log = logging.getLogger("fastcomm.server")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING
_CONTINUATION = WSMsgType.CONTINUATION


class ServerListener(WSListener):
    """Frame handling and transport of one connection; ``conn`` exists once connected."""

    __slots__ = (
        "accept",
        "assembler",
        "conn",
        "max_size",
        "node",
        "receive",
        "ws",
    )

    def __init__(self, node: Node, accept: Accept) -> None:
        self.node = node
        self.accept: Accept | None = accept  # what the handshake decided, until connected
        self.receive = node.receive
        self.max_size = node.config.max_message_size
        self.assembler = FrameAssembler(self.max_size)
        self.conn: Connection | None = None
        self.ws: WSTransport | None = None

    # -- picows callbacks ---------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.ws = transport
        config = self.node.config
        high = max(16 * 1024, min(256 * 1024, config.max_outbound_buffer // 4))
        transport.underlying_transport.set_write_buffer_limits(high=high)
        accept, self.accept = self.accept, None
        assert accept is not None
        self.conn = self.node.attach(self, accept)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.conn is not None:
            self.node.detach(self.conn)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.set_paused(True)

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.set_paused(False)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        conn = self.conn
        if conn is None:
            return
        conn.seen = True
        conn.frame_tokens -= 1.0  # every frame counts: fragments and control frames too
        if conn.frame_tokens < 0.0:
            if not conn.closed:
                conn.fail(CloseCode.RATE_LIMITED, "frame rate exceeded")
            return
        msg_type = frame.msg_type
        if (
            (msg_type is _TEXT or msg_type is _BINARY)
            and frame.fin
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and not self.assembler.opcode
        ):
            # The common case, checked inline: one whole message that is trivially
            # valid (within the size limit; binary, or ASCII text). Anything else goes
            # through the assembler, which owns every rule.
            payload = frame.get_payload_as_bytes()
            if len(payload) <= self.max_size and (msg_type is _BINARY or payload.isascii()):
                if conn.closed:
                    return  # data after our CLOSE is ignored
                try:
                    self.receive(conn, msg_type is _BINARY, payload)
                except Exception:
                    log.exception("unexpected error while handling a message")
                    conn.close(CloseCode.INTERNAL_ERROR, "internal error")
                return
        elif not (msg_type is _TEXT or msg_type is _BINARY or msg_type is _CONTINUATION):
            self._on_control(transport, conn, frame, msg_type)
            return
        if conn.closed:
            return  # data after our CLOSE is ignored
        try:
            done = self.assembler.feed(
                msg_type,  # type: ignore[arg-type]  # an IntEnum, typed as Enum by picows
                frame.fin,
                frame.rsv1 or frame.rsv2 or frame.rsv3,
                frame.get_payload_as_bytes(),
            )
        except ProtocolViolation as exc:
            conn.fail(exc.code, exc.reason)
            return
        if done is None:
            return
        try:
            self.receive(conn, done[0] == 2, done[1])
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
            # Auto-pong is off so that no PONG follows our CLOSE; a PONG is server
            # output like any other, bounded by max_outbound_buffer.
            payload = frame.get_payload_as_bytes()
            if conn.reserve(len(payload) + 2):
                transport.send_pong(payload)

    # -- Transport ------------------------------------------------------------------
    def writer(self, binary: bool) -> Write:
        assert self.ws is not None
        return partial(self.ws.send, _BINARY if binary else _TEXT)

    def buffered(self) -> int:
        assert self.ws is not None
        size: int = self.ws.underlying_transport.get_write_buffer_size()
        return size

    def close(self, code: int, reason: bytes) -> None:
        if self.ws is not None:
            self.ws.send(_CLOSE, code.to_bytes(2, "big") + reason)

    def disconnect(self) -> None:
        if self.ws is not None:
            self.ws.disconnect()

    def abort(self) -> None:
        if self.ws is not None:
            self.ws.disconnect(False)

    def ping(self) -> bool:
        if self.ws is not None:
            self.ws.send_ping()
        return True
