"""RFC 6455 message assembly on top of picows frames (sans-I/O).

picows is a frame layer: it does not reassemble fragmented messages, does not
validate UTF-8 in TEXT messages and delivers frames with RSV bits set. This
module does that work, without any I/O, so it can be unit-tested directly:

* :class:`FrameAssembler` turns data frames (TEXT, BINARY, CONTINUATION) into
  whole messages and raises :class:`~fastcomm.errors.ProtocolViolation` with
  the close code to send when the peer breaks the protocol.
* :func:`close_reply` decides how to answer a CLOSE frame from the peer.
* :func:`is_valid_utf8` is the strict UTF-8 check used for TEXT messages.

Control frames (PING, PONG, CLOSE) may legally arrive between the fragments of
a message; routing them is the caller's job, they are never fed here.
"""

from __future__ import annotations

import codecs

from fastcomm.errors import CloseCode, ProtocolViolation

__all__ = [
    "MAX_CLOSE_REASON",
    "MIN_FRAGMENT",
    "FrameAssembler",
    "close_reason",
    "close_reply",
    "is_valid_utf8",
]

_CONTINUATION = 0x0
_TEXT = 0x1
_BINARY = 0x2
_CLOSE = 0x8
_PONG = 0xA
MIN_FRAGMENT = 64  # average bytes per fragment below which a message has too many
_CODE_SIZE = 2  # bytes of the status code at the start of a CLOSE payload
_REGISTERED_CODES_START = 3000  # 3000-3999 registered with IANA, 4000-4999 private use
_CODES_END = 5000

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

# Codes below 3000 that a peer may send in a CLOSE frame (RFC 6455 section 7.4.1
# and the IANA registry). 1004 is reserved; 1005, 1006 and 1015 must never be
# sent on the wire; the rest of 1000-2999 is unassigned.
_VALID_CLOSE_CODES_BELOW_3000 = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_utf8(data: bytes) -> bool:
    """Return True if ``data`` is well-formed UTF-8 (RFC 3629).

    Overlong forms, surrogates (U+D800-U+DFFF) and code points above U+10FFFF
    are rejected. ASCII data takes a fast path without decoding.
    """
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


MAX_CLOSE_REASON = 123
"""Bytes of reason text a CLOSE frame can carry (125 bytes of payload minus the code)."""


def close_reason(reason: str) -> bytes:
    """``reason`` as UTF-8, cut to :data:`MAX_CLOSE_REASON` bytes on a character boundary.

    Lone surrogates are replaced, so the result is always valid UTF-8.
    """
    data = reason.encode("utf-8", "replace")
    if len(data) <= MAX_CLOSE_REASON:
        return data
    cut = data[:MAX_CLOSE_REASON]
    return cut.decode("utf-8", "ignore").encode()


def close_reply(payload: bytes) -> tuple[int, bytes]:
    """Return the ``(code, reason)`` to answer a CLOSE frame whose payload is ``payload``.

    * empty payload (no status code): ``(1000, b"")``;
    * a valid code (1000-1003, 1007-1014, 3000-4999) with a UTF-8 reason: that
      code echoed back with an empty reason;
    * anything else is a protocol error, ``(1002, <short ASCII reason>)``: a
      1-byte payload, a code below 1000, 1004, 1005, 1006, 1015-2999, a code of
      5000 or more, or a reason that is not valid UTF-8.
    """
    size = len(payload)
    if size == 0:
        return CloseCode.NORMAL, b""
    if size < _CODE_SIZE:
        return CloseCode.PROTOCOL_ERROR, b"close payload of 1 byte"
    code = int.from_bytes(payload[:_CODE_SIZE], "big")
    if not (_REGISTERED_CODES_START <= code < _CODES_END or code in _VALID_CLOSE_CODES_BELOW_3000):
        return CloseCode.PROTOCOL_ERROR, b"invalid close code"
    if size > _CODE_SIZE and not is_valid_utf8(payload[_CODE_SIZE:]):
        return CloseCode.PROTOCOL_ERROR, b"close reason is not valid UTF-8"
    return code, b""


class FrameAssembler:
    """Reassembles data frames into whole messages and enforces RFC 6455 rules.

    One instance per connection. Feed it every TEXT, BINARY and CONTINUATION
    frame in arrival order; it returns each message once its last fragment is
    in. Rules enforced (close code of the :class:`ProtocolViolation` raised):

    * 1002: an RSV bit is set (no extension is ever negotiated); a CONTINUATION
      frame with no message open; a TEXT or BINARY frame while a fragmented
      message is open; a reserved opcode (3-7, 11-15).
    * 1009: the whole message is larger than ``max_message_size``; checked as
      each fragment arrives, before it is buffered.
    * 1008: a message split into more than ``max_fragments`` frames (by
      default one per 64 bytes of ``max_message_size``, at least 16): a flood
      of tiny or empty fragments is refused, not buffered.

    Fragments are appended to one ``bytearray``: memory held is the payload
    received so far, whatever the number of fragments.
    * 1007: a TEXT message is not valid UTF-8; checked fragment by fragment, so
      an invalid sequence fails at the fragment holding it and a sequence cut
      short by the end of the message fails at the final fragment.

    After raising, the assembler is reset and may be reused (although the
    connection is normally closed).
    """

    __slots__ = ("_buffer", "_decoder", "_fragments", "_max_fragments", "_max_size", "opcode")

    def __init__(self, max_message_size: int, max_fragments: int | None = None) -> None:
        """Accept whole messages of up to ``max_message_size`` bytes (>= 0), in at most
        ``max_fragments`` frames (default: ``max(16, max_message_size // 64)``)."""
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        self._max_size = max_message_size
        self._max_fragments = (
            max(16, max_message_size // MIN_FRAGMENT) if max_fragments is None else max_fragments
        )
        self.opcode = 0  # opcode of the open fragmented message, 0 when none (read-only)
        self._buffer = bytearray()
        self._fragments = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    @property
    def in_progress(self) -> bool:
        """True while a fragmented message is being assembled."""
        return self.opcode != 0

    @property
    def max_message_size(self) -> int:
        """The largest whole message accepted, in bytes."""
        return self._max_size

    def reset(self) -> None:
        """Drop any partly assembled message."""
        self.opcode = 0
        self._buffer = bytearray()
        self._fragments = 0
        self._decoder = None

    def _fail(self, code: int, reason: str) -> ProtocolViolation:
        self.reset()
        return ProtocolViolation(code, reason)

    def feed(self, opcode: int, fin: bool, rsv: bool, payload: bytes) -> tuple[int, bytes] | None:
        """Feed one data frame (opcode 0 CONTINUATION, 1 TEXT, 2 BINARY).

        Returns ``(opcode, whole_message)`` when a message completes (opcode is
        1 or 2), None while more fragments are needed. Raises
        :class:`ProtocolViolation` (1002, 1007 or 1009, see the class docstring);
        the assembler is then reset. Raises :class:`ValueError`, without
        changing state, for a control opcode (8-10): those are never data.
        """
        if fin and not rsv and not self.opcode and _TEXT <= opcode <= _BINARY:
            # The common case, first: one whole unfragmented message.
            if len(payload) > self._max_size:
                raise ProtocolViolation(CloseCode.MESSAGE_TOO_BIG, "message too big")
            if opcode == _TEXT and not payload.isascii() and not is_valid_utf8(payload):
                raise ProtocolViolation(CloseCode.INVALID_TEXT, "TEXT message is not valid UTF-8")
            return opcode, payload
        if rsv:
            raise self._fail(CloseCode.PROTOCOL_ERROR, "RSV bit set without an extension")
        if opcode == _CONTINUATION:
            return self._continue(fin, payload)
        if _TEXT <= opcode <= _BINARY:
            if self.opcode:
                raise self._fail(
                    CloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message"
                )
            if len(payload) > self._max_size:
                raise self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
            self._start(opcode, payload)  # not fin: a whole message took the first branch
            return None
        if _CLOSE <= opcode <= _PONG:
            raise ValueError(f"control opcode {opcode} is not a data frame")
        raise self._fail(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")

    def _start(self, opcode: int, payload: bytes) -> None:
        """Open a fragmented message with its first fragment (size already checked)."""
        if opcode == _TEXT:
            decoder = _Utf8Decoder()
            if not payload.isascii():
                try:
                    decoder.decode(payload, False)
                except UnicodeDecodeError:
                    raise self._fail(
                        CloseCode.INVALID_TEXT, "TEXT message is not valid UTF-8"
                    ) from None
            self._decoder = decoder
        self.opcode = opcode
        self._buffer = bytearray(payload)
        self._fragments = 1

    def _continue(self, fin: bool, payload: bytes) -> tuple[int, bytes] | None:
        """Add a CONTINUATION fragment; return the message on the final one."""
        opcode = self.opcode
        if not opcode:
            raise self._fail(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
        if len(self._buffer) + len(payload) > self._max_size:
            raise self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
        self._fragments += 1
        if self._fragments > self._max_fragments:
            raise self._fail(CloseCode.POLICY_VIOLATION, "too many fragments")
        decoder = self._decoder
        # An ASCII fragment cannot break anything unless a multi-byte sequence
        # is pending from the previous fragment.
        if decoder is not None and not (payload.isascii() and not decoder.getstate()[0]):
            try:
                decoder.decode(payload, fin)
            except UnicodeDecodeError:
                raise self._fail(
                    CloseCode.INVALID_TEXT, "TEXT message is not valid UTF-8"
                ) from None
        self._buffer += payload
        if not fin:
            return None
        message = bytes(self._buffer)
        self.reset()
        return opcode, message
