"""Sans-I/O protocol core: message Structs, codecs, frame assembly."""

from fastcomm.protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, Codec, build_codecs
from fastcomm.protocol.frames import FrameAssembler, close_reply, is_valid_utf8

__all__ = [
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "Codec",
    "FrameAssembler",
    "build_codecs",
    "close_reply",
    "is_valid_utf8",
]
