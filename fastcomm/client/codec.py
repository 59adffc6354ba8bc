"""Client-side encoding and decoding of whole messages (sans-I/O).

A :class:`ClientCodec` is built once per client for one subprotocol. It holds
ONE msgspec decoder for the union of every message type a server sends
(:data:`SERVER_TYPES`) plus the application push types the caller declared.

Decoding contract (:meth:`ClientCodec.decode`):

* a frame that matches a known type comes back as that Struct;
* a frame that is a valid object but does not match a known type (an unknown
  ``type``, e.g. from a newer server, or fields failing the schema) comes back
  as a plain ``dict`` so nothing is lost;
* anything else (not valid JSON/MessagePack, not an object, non-string keys,
  a string that is not valid UTF-8, nesting deeper than msgspec decodes)
  raises :class:`msgspec.DecodeError`; the connection treats that as a
  protocol violation by the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Union

import msgspec

from fastcomm.protocol.channel_messages import (
    HistoryReply,
    Join,
    Leave,
    PresenceReply,
    Publication,
    Published,
    Subscribed,
    Unsubscribed,
)
from fastcomm.protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from fastcomm.protocol.messages import ErrorReply, Message, Pong, Result, Resumed, Welcome

__all__ = ["SERVER_TYPES", "SUBPROTOCOLS", "ClientCodec", "Decoded", "message_id"]

#: Every message type a fastcomm v1 server sends (replies and pushes).
SERVER_TYPES: tuple[type[msgspec.Struct], ...] = (
    Welcome,
    Resumed,
    Pong,
    Result,
    ErrorReply,
    Subscribed,
    Unsubscribed,
    Published,
    PresenceReply,
    HistoryReply,
    Publication,
    Join,
    Leave,
)

#: The subprotocols a client may ask for.
SUBPROTOCOLS = (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)

#: What decoding a server frame yields: a known Struct, or a dict for anything else.
Decoded = msgspec.Struct | dict[str, Any]


def _tag(cls: type[msgspec.Struct]) -> str:
    """The ``type`` tag of a tagged Struct class; TypeError if it has none."""
    info = msgspec.inspect.type_info(cls)
    tag = getattr(info, "tag", None)
    if getattr(info, "tag_field", None) != "type" or not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} must be a tagged Struct, e.g. a fastcomm.Message subclass")
    return tag


def message_id(msg: Decoded) -> int | None:
    """The integer ``id`` of a decoded message, or None when it carries none."""
    rid = msg.get("id") if isinstance(msg, dict) else getattr(msg, "id", None)
    return rid if type(rid) is int else None


class ClientCodec:
    """Encoder and decoder of one subprotocol on the client side.

    ``name`` is the subprotocol, ``binary`` tells which frame type carries its
    messages (BINARY for MessagePack, TEXT for JSON). ``types`` are the
    application push types to decode into Structs; their tags must be unique
    and must not collide with a server message type (ValueError otherwise).
    ``encode(msg)`` returns bytes; ``decode(data)`` follows the module contract.
    """

    __slots__ = ("_decode_dict", "_decode_typed", "binary", "encode", "name", "types")

    def __init__(self, name: str, types: Iterable[type[Message]] = ()) -> None:
        if name not in SUBPROTOCOLS:
            raise ValueError(f"unknown subprotocol {name!r}; use one of {', '.join(SUBPROTOCOLS)}")
        tags = {_tag(cls): cls for cls in SERVER_TYPES}
        extra: list[type[msgspec.Struct]] = []
        for cls in types:
            if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
                raise TypeError("types must be fastcomm.Message subclasses")
            tag = _tag(cls)
            if tags.get(tag, cls) is not cls:
                raise ValueError(f"message type {tag!r} is declared twice or is a server type")
            if cls not in extra:
                tags[tag] = cls
                extra.append(cls)
        self.name = name
        self.binary = name == MSGPACK_SUBPROTOCOL
        self.types: tuple[type[msgspec.Struct], ...] = SERVER_TYPES + tuple(extra)
        union: Any = Union[self.types]  # noqa: UP007 - a runtime union of classes
        module: Any = msgspec.msgpack if self.binary else msgspec.json
        self._decode_typed = module.Decoder(union).decode
        self._decode_dict = module.Decoder(dict[str, Any]).decode
        self.encode: Callable[[Any], bytes] = module.Encoder().encode

    def decode(self, data: bytes) -> Decoded:
        """Decode one whole server message; see the module docstring."""
        try:
            try:
                return self._decode_typed(data)  # type: ignore[no-any-return]
            except msgspec.ValidationError:
                return self._decode_dict(data)  # type: ignore[no-any-return]
        except UnicodeDecodeError:  # msgspec raises it for a bad string, not DecodeError
            raise msgspec.DecodeError("a string is not valid UTF-8") from None
        except RecursionError:  # nested about 1,000 levels deep
            raise msgspec.DecodeError("nested too deeply") from None
