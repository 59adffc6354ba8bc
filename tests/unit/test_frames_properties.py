"""Properties of the sans-I/O frame layer, checked on generated frame sequences.

A reference model runs next to :class:`FrameAssembler`: it tracks the open
message's fragments, so every whole message returned can be compared with the
concatenation of what was fed since its first fragment.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastcomm.errors import ProtocolViolation
from fastcomm.protocol.frames import MAX_CLOSE_REASON, FrameAssembler, close_reply, is_valid_utf8

__all__: list[str] = []

DATA_OPCODES = (0, 1, 2)
CONTROL_OPCODES = (8, 9, 10)
RESERVED_OPCODES = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)
# Codes an endpoint may put in a CLOSE frame (RFC 6455 7.4): never 1004-1006 or 1015.
SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)})
ASSEMBLER_CODES = frozenset({1002, 1007, 1009})

# Payloads: raw bytes, valid UTF-8 (with multi-byte characters, so fragment
# boundaries cut sequences), and UTF-8 cut at a random byte.
_text = st.text(max_size=40).map(str.encode)
_cut_text = st.tuples(st.text(min_size=1, max_size=20), st.integers(0, 80)).map(
    lambda pair: pair[0].encode()[: pair[1]]
)
payloads = st.one_of(st.binary(max_size=60), _text, _cut_text)
# Mostly data opcodes, so that fragmented messages actually get assembled.
opcodes = st.one_of(st.sampled_from(DATA_OPCODES), st.sampled_from(RESERVED_OPCODES))
# RSV set in one frame of four: often enough to be hit, rarely enough not to end every run.
frames = st.tuples(opcodes, st.booleans(), st.sampled_from((False, False, False, True)), payloads)
sequences = st.lists(frames, max_size=30)


class Model:
    """What a correct assembler has buffered: the open message, if any."""

    def __init__(self) -> None:
        self.opcode = 0
        self.parts: list[bytes] = []

    def reset(self) -> None:
        self.opcode, self.parts = 0, []


@settings(max_examples=300, deadline=None)
@given(max_size=st.integers(0, 150), sequence=sequences)
def test_feed_returns_whole_messages_or_raises_protocol_violation(
    max_size: int, sequence: list[tuple[int, bool, bool, bytes]]
) -> None:
    assembler, model = FrameAssembler(max_size), Model()
    for opcode, fin, rsv, payload in sequence:
        try:
            result = assembler.feed(opcode, fin, rsv, payload)
        except ProtocolViolation as exc:
            assert exc.code in ASSEMBLER_CODES and exc.code in SENDABLE, exc
            assert not assembler.in_progress  # reset after a violation
            model.reset()
            continue
        # Anything the assembler accepted must have been legal at that point.
        assert not rsv and opcode in DATA_OPCODES
        assert (opcode == 0) == bool(model.opcode), "continuation/new-message rule broken"
        if opcode:
            model.opcode, model.parts = opcode, [payload]
        else:
            model.parts.append(payload)
        if result is None:
            assert not fin and assembler.in_progress
            continue
        kind, message = result
        assert fin and kind == model.opcode
        assert message == b"".join(model.parts)
        assert len(message) <= max_size
        if kind == 1:
            assert is_valid_utf8(message)
        assert not assembler.in_progress
        model.reset()


@settings(max_examples=300, deadline=None)
@given(
    max_size=st.integers(0, 200),
    parts=st.lists(st.binary(max_size=50), min_size=1, max_size=8),
    text=st.booleans(),
)
def test_legal_fragments_of_a_fitting_message_always_assemble(
    max_size: int, parts: list[bytes], text: bool
) -> None:
    """A legal fragmentation of a message within the size limit is never refused
    (for TEXT: unless the whole message is not UTF-8)."""
    assembler = FrameAssembler(max_size)
    whole = b"".join(parts)
    opcode = 1 if text else 2
    result = None
    try:
        for n, part in enumerate(parts):
            result = assembler.feed(opcode if n == 0 else 0, n == len(parts) - 1, False, part)
    except ProtocolViolation as exc:
        assert (exc.code == 1009 and len(whole) > max_size) or (
            exc.code == 1007 and text and not is_valid_utf8(whole)
        ), (exc, whole)
        return
    assert len(whole) <= max_size and not (text and not is_valid_utf8(whole))
    assert result == (opcode, whole)


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(frames, max_size=5),
    control=st.sampled_from(CONTROL_OPCODES),
    fin=st.booleans(),
    payload=st.binary(max_size=10),
)
def test_control_opcodes_are_refused_without_changing_state(
    before: list[tuple[int, bool, bool, bytes]], control: int, fin: bool, payload: bytes
) -> None:
    assembler = FrameAssembler(100)
    for frame in before:
        with contextlib.suppress(ProtocolViolation):
            assembler.feed(*frame)
    state = assembler.in_progress
    with pytest.raises(ValueError, match="control opcode"):
        assembler.feed(control, fin, False, payload)
    assert assembler.in_progress == state


@settings(max_examples=1000, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=130),
        st.tuples(st.integers(0, 65535), st.binary(max_size=20)).map(
            lambda pair: pair[0].to_bytes(2, "big") + pair[1]
        ),
    )
)
def test_close_reply_always_sends_a_sendable_code(payload: bytes) -> None:
    code, reason = close_reply(payload)
    assert code in SENDABLE
    assert len(reason) <= MAX_CLOSE_REASON and is_valid_utf8(reason)
    received = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    if received in SENDABLE and is_valid_utf8(payload[2:]):
        assert code == received  # a valid code is echoed
    elif payload:
        assert code == 1002  # anything else is a protocol error
    else:
        assert code == 1000
