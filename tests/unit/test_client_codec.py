"""The client's decoder (fastcomm.client.codec): its contract on odd input and odd types."""

from __future__ import annotations

import msgspec
import pytest

import fastcomm
from fastcomm.client.codec import ClientCodec
from fastcomm.protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL

DEPTH = 5000  # far deeper than msgspec decodes (about 1,000 levels)


class Notice(fastcomm.Message, tag="notice"):
    text: str


class Untagged(msgspec.Struct):
    text: str


@pytest.mark.parametrize(
    ("subprotocol", "data"),
    [
        (JSON_SUBPROTOCOL, b'{"type":"notice","text":' + b"[" * DEPTH + b"]" * DEPTH + b"}"),
        (MSGPACK_SUBPROTOCOL, b"\x82\xa4type\xa6notice\xa4text" + b"\x91" * DEPTH + b"\x90"),
    ],
)
def test_input_nested_too_deeply_is_a_decode_error(subprotocol: str, data: bytes) -> None:
    """Like any input it cannot decode: the connection closes with 1007 on it."""
    codec = ClientCodec(subprotocol, [Notice])
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        codec.decode(data)


def test_a_push_type_declared_twice_is_taken_once() -> None:
    codec = ClientCodec(JSON_SUBPROTOCOL, [Notice, Notice])
    assert codec.types.count(Notice) == 1
    assert codec.decode(b'{"type":"notice","text":"hi"}') == Notice("hi")


def test_an_untagged_struct_is_refused() -> None:
    with pytest.raises(TypeError, match="Untagged must be a tagged Struct"):
        ClientCodec(JSON_SUBPROTOCOL, [Untagged])  # type: ignore[list-item]
