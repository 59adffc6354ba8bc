"""Encoding and decoding of whole messages (sans-I/O).

A :class:`Codec` is built once per subprotocol at startup, with one msgspec
decoder for the union of built-in and registered request types. Decoding
failures are turned into :class:`~fastcomm.errors.WireError` with the failing
path in ``details``; that slow path runs only on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Union

import msgspec

from fastcomm.errors import ErrorCode, WireError
from fastcomm.protocol.messages import Message

__all__ = [
    "DECODE_FAILURES",
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "Codec",
    "build_codecs",
]

JSON_SUBPROTOCOL = "fastcomm.v1.json"
MSGPACK_SUBPROTOCOL = "fastcomm.v1.msgpack"

# msgspec raises UnicodeDecodeError for a MessagePack str that is not UTF-8, and
# RecursionError for input nested deeper than it decodes (about 1,000 levels).
DECODE_FAILURES = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
_PATH = re.compile(r" - at `(\$[^`]*)`$")


class _Envelope(msgspec.Struct):
    """Lenient view of a request, used only to find the ``id`` of a bad one."""

    id: Any = None


class Codec:
    """Decoder and encoder of one subprotocol.

    ``binary`` tells which WebSocket frame type carries its messages.
    ``decode`` returns a request Struct or raises :class:`WireError`
    (``invalid_message`` or ``unknown_type``); ``encode`` returns bytes.
    """

    __slots__ = ("_envelope", "binary", "decode_raw", "encode", "name")

    def __init__(self, name: str, union: Any) -> None:
        self.name = name
        self.binary = name == MSGPACK_SUBPROTOCOL
        if self.binary:
            self.decode_raw = msgspec.msgpack.Decoder(union).decode
            self._envelope = msgspec.msgpack.Decoder(_Envelope).decode
            self.encode = msgspec.msgpack.Encoder().encode
        else:
            self.decode_raw = msgspec.json.Decoder(union).decode
            self._envelope = msgspec.json.Decoder(_Envelope).decode
            self.encode = msgspec.json.Encoder().encode

    def decode(self, data: bytes | memoryview) -> Message:
        """Decode one request; raise :class:`WireError` on any failure."""
        try:
            return self.decode_raw(data)  # type: ignore[no-any-return]
        except DECODE_FAILURES as exc:
            raise self.explain(exc) from None

    def explain(self, exc: Exception) -> WireError:
        """Turn a msgspec failure into the wire error to send back."""
        text = str(exc)
        if isinstance(exc, RecursionError):
            reason = "nested too deeply"
            return WireError(ErrorCode.INVALID_MESSAGE, reason, {"path": "$", "reason": reason})
        match = _PATH.search(text)
        path = match.group(1) if match else "$"
        if isinstance(exc, msgspec.ValidationError):
            if path == "$.type" and text.startswith("Invalid value"):
                return WireError(ErrorCode.UNKNOWN_TYPE, "unknown message type", {"path": path})
            if text.startswith("Object missing required field `type`"):
                path = "$.type"
            message = "message does not match its schema"
        else:
            message = "message is not valid " + ("MessagePack" if self.binary else "JSON")
        return WireError(ErrorCode.INVALID_MESSAGE, message, {"path": path, "reason": text})

    def request_id(self, data: bytes | memoryview) -> int | None:
        """Best-effort ``id`` of a request that failed to decode."""
        try:
            rid = self._envelope(data).id
        except DECODE_FAILURES:
            return None
        return rid if type(rid) is int and -(2**63) <= rid < 2**63 else None


def build_codecs(types: Iterable[type[Message]]) -> dict[str, Codec]:
    """Build one codec per subprotocol for the given request types."""
    kinds = tuple(types)
    if not kinds:
        raise ValueError("at least one message type is required")
    union: Any = kinds[0] if len(kinds) == 1 else Union[kinds]  # noqa: UP007
    return {name: Codec(name, union) for name in (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)}
