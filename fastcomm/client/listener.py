"""picows listener of one client connection: the RFC 6455 rules picows leaves to us.

picows is a frame layer on the client side too: it does not reassemble
fragmented messages, does not validate UTF-8 and does not answer CLOSE.
:class:`ClientListener` does that work and hands whole messages to a
:class:`FrameSink` (the :class:`~fastcomm.client.connection.ClientConnection`).
picows itself answers PING frames (auto-pong).
"""

from __future__ import annotations

import logging
from typing import Protocol

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from fastcomm.errors import ProtocolViolation
from fastcomm.protocol.frames import FrameAssembler

__all__ = ["ClientListener", "FrameSink"]

log = logging.getLogger("fastcomm.client")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING
_PONG = WSMsgType.PONG


class FrameSink(Protocol):
    """What the listener reports to; every method is called on the event loop."""

    def connected(self, transport: WSTransport) -> None:
        """The upgrade completed; ``transport`` is ready to send."""

    def message(self, binary: bool, payload: bytes) -> None:
        """One whole, valid data message (TEXT payloads are valid UTF-8)."""

    def close_received(self, payload: bytes) -> None:
        """The server sent CLOSE with this payload (already checked by picows)."""

    def violation(self, code: int, reason: str) -> None:
        """The server broke RFC 6455; close the connection with ``code``."""

    def disconnected(self) -> None:
        """The TCP connection is gone (always called once, last)."""


class ClientListener(WSListener):
    """Frame handling for one client connection.

    Reassembles fragments, enforces ``max_message_size`` per whole message
    (1009), rejects RSV bits and bad fragment sequences (1002) and invalid
    UTF-8 in TEXT messages (1007), then hands each message to the sink. An
    exception from the sink is logged, never propagated: picows would answer
    it with 1011 and drop the connection.
    """

    __slots__ = ("assembler", "sink")

    def __init__(self, sink: FrameSink, max_message_size: int) -> None:
        self.sink = sink
        self.assembler = FrameAssembler(max_message_size)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.sink.connected(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.sink.disconnected()

    def pause_writing(self) -> None:
        """Sends never block on the client; overriding silences picows' warning."""

    def resume_writing(self) -> None:
        """See :meth:`pause_writing`."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        try:
            self._on_frame(frame)
        except Exception:
            log.exception("unexpected error while handling a frame from the server")

    def _on_frame(self, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _CLOSE:
            self.sink.close_received(frame.get_payload_as_bytes())
            return
        if msg_type is _PING or msg_type is _PONG:
            return  # picows answers pings itself
        try:
            done = self.assembler.feed(
                msg_type,  # type: ignore[arg-type]  # an IntEnum, typed as Enum by picows
                frame.fin,
                frame.rsv1 or frame.rsv2 or frame.rsv3,
                frame.get_payload_as_bytes(),
            )
        except ProtocolViolation as exc:
            self.sink.violation(exc.code, exc.reason)
            return
        if done is not None:
            self.sink.message(done[0] == 2, done[1])  # opcode 2: BINARY
