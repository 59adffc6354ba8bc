"""Properties of the codecs, over the built-in requests plus an app message type.

Whatever bytes arrive, :meth:`Codec.decode` gives a message or a
:class:`WireError` the server can send back, and :meth:`Codec.request_id`
never raises: these run on untrusted input for every frame.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import fastcomm
from fastcomm.errors import ErrorCode, WireError
from fastcomm.protocol.channel_messages import (
    HistoryRequest,
    PresenceRequest,
    Publish,
    Recover,
    Subscribe,
    Unsubscribe,
)
from fastcomm.protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, Codec, build_codecs
from fastcomm.protocol.messages import Message, Ping

__all__: list[str] = []


class Move(fastcomm.Message, tag="move"):
    """An application message with required, optional, nested and typed fields."""

    x: int
    y: float = 0.0
    label: str | None = None
    tags: list[str] = []
    extra: dict[str, Any] = {}


TYPES: tuple[type[Message], ...] = (
    Ping, Subscribe, Unsubscribe, Publish, PresenceRequest, HistoryRequest, Move,
)  # fmt: skip
CODECS = build_codecs(TYPES)
BOTH = [CODECS[JSON_SUBPROTOCOL], CODECS[MSGPACK_SUBPROTOCOL]]
TAGS = ["ping", "subscribe", "unsubscribe", "publish", "presence", "history", "move", "nope"]
WIRE_CODES = {ErrorCode.INVALID_MESSAGE, ErrorCode.UNKNOWN_TYPE}

# Values both encodings carry unchanged: no NaN (JSON has none), 64-bit integers
# (MessagePack's range), string keys, lists (arrays decode as lists).
int64 = st.integers(-(2**63), 2**63 - 1)
scalars = st.one_of(
    st.none(), st.booleans(), int64, st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
# Objects shaped like requests (a known or unknown type, some fields of the right
# name with any value) reach the validation paths that random bytes rarely do.
fields = st.sampled_from(
    ["id", "channel", "data", "recover", "since", "limit", "x", "y", "label", "tags", "extra"]
)
request_like = st.builds(
    lambda tag, extra: {"type": tag, **extra},
    st.sampled_from(TAGS) | values,
    st.dictionaries(fields, values, max_size=5),
)


def _encoded(codec: Codec, obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj) if codec.binary else msgspec.json.encode(obj)


def _mutated(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    """``data`` with bytes replaced (position, new byte) and possibly truncated."""
    buf = bytearray(data)
    for pos, byte in cuts:
        if buf:
            buf[pos % len(buf)] = byte
    return bytes(buf)


def _decode_contract(codec: Codec, data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except WireError as exc:
        assert exc.code in WIRE_CODES, exc.code
        assert isinstance(exc.details, dict) and exc.details["path"].startswith("$")
    else:
        assert isinstance(msg, TYPES)
    rid = codec.request_id(data)
    assert rid is None or type(rid) is int


@pytest.mark.parametrize("codec", BOTH, ids=["json", "msgpack"])
@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_decode_or_give_a_wire_error(codec: Codec, data: bytes) -> None:
    _decode_contract(codec, data)


@pytest.mark.parametrize("codec", BOTH, ids=["json", "msgpack"])
@settings(max_examples=400, deadline=None)
@given(
    obj=st.one_of(request_like, values),
    cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    keep=st.integers(0, 10_000),
)
def test_request_shaped_and_mutated_input_decodes_or_gives_a_wire_error(
    codec: Codec, obj: Any, cuts: list[tuple[int, int]], keep: int
) -> None:
    data = _encoded(codec, obj)
    _decode_contract(codec, data)
    mutated = _mutated(data, cuts)
    _decode_contract(codec, mutated)
    _decode_contract(codec, mutated[:keep])


# -- valid messages round-trip ----------------------------------------------------------
offsets = st.integers(0, 2**63 - 1)  # what offsets and counts accept (Offset)
ids = st.one_of(st.just(msgspec.UNSET), st.none(), int64)
channels = st.text(min_size=1, max_size=20)
messages = st.one_of(
    st.builds(Ping, id=ids),
    st.builds(
        Subscribe, id=ids, channel=channels,
        recover=st.none() | st.builds(Recover, offset=offsets, epoch=st.text(max_size=8)),
    ),
    st.builds(Unsubscribe, id=ids, channel=channels),
    st.builds(Publish, id=ids, channel=channels, data=values),
    st.builds(PresenceRequest, id=ids, channel=channels),
    st.builds(
        HistoryRequest,
        id=ids,
        channel=channels,
        since=st.none() | offsets,
        limit=st.none() | offsets,
    ),
    st.builds(
        Move, id=ids, x=int64, y=st.floats(allow_nan=False, allow_infinity=False),
        label=st.none() | st.text(max_size=10), tags=st.lists(st.text(max_size=5), max_size=3),
        extra=st.dictionaries(st.text(max_size=5), values, max_size=3),
    ),
)  # fmt: skip


@pytest.mark.parametrize("codec", BOTH, ids=["json", "msgpack"])
@settings(max_examples=300, deadline=None)
@given(msg=messages)
def test_valid_messages_round_trip(codec: Codec, msg: Message) -> None:
    data = codec.encode(msg)
    assert codec.decode(data) == msg
    rid = msg.id
    assert codec.request_id(data) == (rid if type(rid) is int else None)


# -- deep nesting ------------------------------------------------------------------------
def _nested(codec: Codec, depth: int) -> bytes:
    """A publish whose ``data`` is ``depth`` nested arrays (valid at any depth)."""
    if codec.binary:
        head = msgspec.msgpack.encode({"type": "publish", "channel": "c", "id": 7})
        # Same map with one more entry: fixmap count + 1, then "data": [[[...nil]]].
        return (
            bytes([head[0] + 1])
            + head[1:]
            + msgspec.msgpack.encode("data")
            + (b"\x91" * depth + b"\xc0")
        )
    return b'{"type":"publish","channel":"c","id":7,"data":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("codec", BOTH, ids=["json", "msgpack"])
@settings(max_examples=10, deadline=None, phases=(Phase.explicit, Phase.generate))
@given(depth=st.integers(1_000, 50_000))
def test_deeply_nested_input_decodes_or_gives_a_wire_error(codec: Codec, depth: int) -> None:
    _decode_contract(codec, _nested(codec, depth))
