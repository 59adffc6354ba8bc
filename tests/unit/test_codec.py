"""The sans-I/O codec: decode, validate, explain failures."""

from __future__ import annotations

import msgspec
import pytest

import fastcomm
from fastcomm.errors import WireError
from fastcomm.protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, build_codecs
from fastcomm.protocol.messages import ErrorReply, Ping, Pong, Welcome


class Move(fastcomm.Message, tag="move"):
    x: int
    y: int = 0
    label: str | None = None


CODECS = build_codecs([Ping, Move])
JSON = CODECS[JSON_SUBPROTOCOL]
PACK = CODECS[MSGPACK_SUBPROTOCOL]


def test_codecs_know_their_frame_type() -> None:
    assert JSON.binary is False
    assert PACK.binary is True


def test_decode_tagged_union_in_both_encodings() -> None:
    assert JSON.decode(b'{"type":"move","id":3,"x":1}') == Move(x=1, id=3)
    assert PACK.decode(msgspec.msgpack.encode({"type": "move", "x": 2})) == Move(x=2)
    assert JSON.decode(b'{"type":"ping"}') == Ping()


def test_id_absent_is_unset_and_omitted_on_encode() -> None:
    msg = JSON.decode(b'{"type":"move","x":1}')
    assert msg.id is msgspec.UNSET
    assert JSON.encode(Move(x=1)) == b'{"type":"move","x":1,"y":0,"label":null}'


def test_unknown_fields_are_ignored() -> None:
    assert JSON.decode(b'{"type":"ping","extra":[1,2]}') == Ping()


@pytest.mark.parametrize(
    ("data", "code", "path"),
    [
        (b"{", "invalid_message", "$"),
        (b"42", "invalid_message", "$"),
        (b'{"x":1}', "invalid_message", "$.type"),
        (b'{"type":7}', "invalid_message", "$.type"),
        (b'{"type":"jump"}', "unknown_type", "$.type"),
        (b'{"type":"move","x":"1"}', "invalid_message", "$.x"),
        (b'{"type":"move","x":1,"label":5}', "invalid_message", "$.label"),
        (b'{"type":"move","id":"a","x":1}', "invalid_message", "$.id"),
    ],
)
def test_failures_become_wire_errors_with_path(data: bytes, code: str, path: str) -> None:
    with pytest.raises(WireError) as info:
        JSON.decode(data)
    assert info.value.code == code
    assert info.value.details["path"] == path


@pytest.mark.parametrize(
    ("data", "rid"),
    [
        (b'{"type":"jump","id":9}', 9),
        (b'{"type":"move","id":4,"x":"bad"}', 4),
        (b'{"id":"nine"}', None),
        (b"not json", None),
        (b'{"id":true}', None),
    ],
)
def test_request_id_of_bad_requests(data: bytes, rid: int | None) -> None:
    assert JSON.request_id(data) == rid


def test_msgpack_failure_names_msgpack() -> None:
    with pytest.raises(WireError) as info:
        PACK.decode(b"\xc1")
    assert "MessagePack" in info.value.message


def test_server_messages_encode_with_type_first() -> None:
    assert JSON.encode(Pong(5)) == b'{"type":"pong","id":5}'
    error = JSON.encode(ErrorReply(None, "internal", "x"))
    assert error == b'{"type":"error","id":null,"code":"internal","message":"x","details":null}'
    welcome = msgspec.json.decode(JSON.encode(Welcome("s", "t", False, 25.0, 10)))
    assert welcome["protocol"] == "fastcomm.v1"


def test_build_codecs_needs_types() -> None:
    with pytest.raises(ValueError):
        build_codecs([])


def test_msgpack_string_that_is_not_utf8_is_invalid_message() -> None:
    bad = b"\x83\xa4type\xa4move\xa1x\x01\xa5label\xa1\xff"
    with pytest.raises(WireError) as info:
        PACK.decode(bad)
    assert info.value.code == "invalid_message"
    assert PACK.request_id(b"\x82\xa4type\xa1\xff\xa2id\x01") == 1
