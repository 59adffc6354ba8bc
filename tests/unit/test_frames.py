"""Unit tests of fastcomm.protocol.frames: message assembly and CLOSE replies."""

from __future__ import annotations

import pytest

from fastcomm.errors import CloseCode, ProtocolViolation
from fastcomm.protocol.frames import FrameAssembler, close_reply, is_valid_utf8

CONT, TEXT, BINARY = 0, 1, 2
LIMIT = 64

# "κόσμε" followed by other multi-byte characters: 2, 3 and 4 byte sequences.
MULTIBYTE = "κόσμε €𝄞 ok".encode()


def split(data: bytes, n: int) -> list[bytes]:
    """Cut ``data`` into ``n`` consecutive chunks (some may be empty)."""
    step = -(-len(data) // n) if data else 0
    return [data[i * step : (i + 1) * step] for i in range(n)]


def feed_all(asm: FrameAssembler, opcode: int, chunks: list[bytes]) -> tuple[int, bytes] | None:
    """Feed ``chunks`` as one message; assert nothing completes before the last."""
    for i, chunk in enumerate(chunks):
        fin = i == len(chunks) - 1
        result = asm.feed(opcode if i == 0 else CONT, fin, False, chunk)
        if not fin:
            assert result is None
            assert asm.in_progress
    return result


def assert_violation(exc: pytest.ExceptionInfo[ProtocolViolation], code: int) -> None:
    assert exc.value.code == code
    assert exc.value.reason


# --------------------------------------------------------------------------- assembly


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("parts", [1, 2, 3, 7, len(MULTIBYTE)])
def test_message_in_n_fragments(opcode: int, parts: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert feed_all(asm, opcode, split(MULTIBYTE, parts)) == (opcode, MULTIBYTE)
    assert not asm.in_progress


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_single_frame_is_returned_as_is(opcode: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    payload = b"hello"
    result = asm.feed(opcode, True, False, payload)
    assert result == (opcode, payload)
    assert result[1] is payload
    assert not asm.in_progress


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_empty_messages(opcode: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert asm.feed(opcode, True, False, b"") == (opcode, b"")
    assert feed_all(asm, opcode, [b"", b"", b""]) == (opcode, b"")


def test_consecutive_messages_do_not_leak_into_each_other() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert feed_all(asm, TEXT, [b"ab", b"cd"]) == (TEXT, b"abcd")
    assert feed_all(asm, BINARY, [b"\xff", b"\x00"]) == (BINARY, b"\xff\x00")
    assert asm.feed(TEXT, True, False, b"x") == (TEXT, b"x")
    assert feed_all(asm, TEXT, [b"e", b"f", b"g"]) == (TEXT, b"efg")


def test_in_progress_tracks_the_open_message() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert not asm.in_progress
    assert asm.feed(BINARY, False, False, b"a") is None
    assert asm.in_progress
    assert asm.feed(CONT, False, False, b"b") is None
    assert asm.in_progress
    assert asm.feed(CONT, True, False, b"c") == (BINARY, b"abc")
    assert not asm.in_progress


def test_control_frames_between_fragments_are_the_callers_business() -> None:
    # Control frames are never fed; the caller handles them and the message
    # carries on. Feeding one is a programming error, not a peer error.
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    asm.feed(TEXT, False, False, b"fragment ")
    for control in (8, 9, 10):
        with pytest.raises(ValueError, match="control opcode"):
            asm.feed(control, True, False, b"")
        assert asm.in_progress
    assert asm.feed(CONT, True, False, b"done") == (TEXT, b"fragment done")


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        FrameAssembler(-1)
    assert FrameAssembler(0).max_message_size == 0


# --------------------------------------------------------------------------- 1002


@pytest.mark.parametrize("opcode", [CONT, TEXT, BINARY])
@pytest.mark.parametrize("fin", [True, False])
def test_rsv_bit_is_a_protocol_error(opcode: int, fin: bool) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    if opcode == CONT:
        asm.feed(TEXT, False, False, b"start")
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(opcode, fin, True, b"data")
    assert_violation(exc, CloseCode.PROTOCOL_ERROR)
    assert not asm.in_progress


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_start(fin: bool) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, fin, False, b"orphan")
    assert_violation(exc, CloseCode.PROTOCOL_ERROR)


def test_continuation_after_a_completed_message() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert feed_all(asm, TEXT, [b"a", b"b"]) == (TEXT, b"ab")
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, True, False, b"c")
    assert_violation(exc, CloseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("first", [TEXT, BINARY])
@pytest.mark.parametrize("second", [TEXT, BINARY])
@pytest.mark.parametrize("fin", [True, False])
def test_new_message_inside_a_fragmented_one(first: int, second: int, fin: bool) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    asm.feed(first, False, False, b"open")
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(second, fin, False, b"again")
    assert_violation(exc, CloseCode.PROTOCOL_ERROR)
    assert not asm.in_progress


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@pytest.mark.parametrize("open_message", [False, True])
def test_reserved_opcodes(opcode: int, open_message: bool) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    if open_message:
        asm.feed(BINARY, False, False, b"open")
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(opcode, True, False, b"")
    assert_violation(exc, CloseCode.PROTOCOL_ERROR)
    assert not asm.in_progress


def test_assembler_is_reset_after_a_violation() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    asm.feed(TEXT, False, False, b"\xce")  # a pending multi-byte sequence
    with pytest.raises(ProtocolViolation):
        asm.feed(BINARY, True, False, b"x")
    # Neither the old fragments nor the old UTF-8 state survive.
    assert not asm.in_progress
    assert feed_all(asm, TEXT, [b"fresh", b" start"]) == (TEXT, b"fresh start")
    with pytest.raises(ProtocolViolation):
        asm.feed(CONT, True, False, b"x")


# --------------------------------------------------------------------------- 1009


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("parts", [1, 2, 5, LIMIT])
def test_message_exactly_at_the_limit_passes(opcode: int, parts: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    message = b"x" * LIMIT
    assert feed_all(asm, opcode, split(message, parts)) == (opcode, message)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("parts", [1, 2, 5, LIMIT + 1])
def test_message_one_over_the_limit_fails(opcode: int, parts: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    chunks = split(b"x" * (LIMIT + 1), parts)
    with pytest.raises(ProtocolViolation) as exc:
        feed_all(asm, opcode, chunks)
    assert_violation(exc, CloseCode.MESSAGE_TOO_BIG)
    assert not asm.in_progress


def test_size_limit_fails_before_the_final_fragment() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert asm.feed(BINARY, False, False, b"x" * (LIMIT - 1)) is None
    assert asm.feed(CONT, False, False, b"y") is None  # exactly at the limit
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, False, False, b"z")  # not fin: fails as it arrives
    assert_violation(exc, CloseCode.MESSAGE_TOO_BIG)
    assert not asm.in_progress


def test_oversized_first_fragment_fails_immediately() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(TEXT, False, False, b"x" * (LIMIT + 1))
    assert_violation(exc, CloseCode.MESSAGE_TOO_BIG)
    assert not asm.in_progress


def test_size_is_checked_before_utf8() -> None:
    asm = FrameAssembler(4)
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(TEXT, True, False, b"\xff" * 5)
    assert_violation(exc, CloseCode.MESSAGE_TOO_BIG)


def test_zero_limit_accepts_only_empty_messages() -> None:
    asm = FrameAssembler(0)
    assert asm.feed(BINARY, True, False, b"") == (BINARY, b"")
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(BINARY, True, False, b"x")
    assert_violation(exc, CloseCode.MESSAGE_TOO_BIG)


# --------------------------------------------------------------------------- 1007

INVALID_UTF8 = [
    pytest.param(b"\xff", id="ff"),
    pytest.param(b"\x80", id="lone-continuation"),
    pytest.param(b"\xc0\xaf", id="overlong-2"),
    pytest.param(b"\xe0\x80\xaf", id="overlong-3"),
    pytest.param(b"\xed\xa0\x80", id="surrogate"),
    pytest.param(b"\xf4\x90\x80\x80", id="above-10ffff"),
    pytest.param(b"\xce\x41", id="bad-continuation"),
]


@pytest.mark.parametrize("cut", range(1, len(MULTIBYTE)))
def test_multibyte_split_at_every_fragment_boundary(cut: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    chunks = [MULTIBYTE[:cut], MULTIBYTE[cut:]]
    assert feed_all(asm, TEXT, chunks) == (TEXT, MULTIBYTE)


def test_multibyte_sequence_spread_over_several_fragments() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    clef = "𝄞".encode()  # 4 bytes, one per fragment, then ASCII
    assert feed_all(asm, TEXT, [bytes([b]) for b in clef] + [b"!"]) == (TEXT, clef + b"!")


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_single_frame_text(bad: bytes) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(TEXT, True, False, b"ok " + bad)
    assert_violation(exc, CloseCode.INVALID_TEXT)


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8_fails_at_the_fragment_holding_it(bad: bytes) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert asm.feed(TEXT, False, False, "κόσμε".encode()) is None
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, False, False, bad + b"tail")  # not fin: fails right here
    assert_violation(exc, CloseCode.INVALID_TEXT)
    assert not asm.in_progress


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8_in_the_first_fragment(bad: bytes) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(TEXT, False, False, bad + b"tail")
    assert_violation(exc, CloseCode.INVALID_TEXT)
    assert not asm.in_progress


def test_invalid_continuation_after_a_pending_sequence_in_an_ascii_fragment() -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert asm.feed(TEXT, False, False, b"ok \xe2\x82") is None  # first 2 bytes of "€"
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, False, False, b"abc")
    assert_violation(exc, CloseCode.INVALID_TEXT)


TRUNCATED = [b"\xce", b"\xe2\x82", b"\xf0\x9d\x84"]  # 2-, 3- and 4-byte sequences cut short


@pytest.mark.parametrize("truncated", TRUNCATED)
def test_truncated_sequence_pending_from_earlier_fragment_fails_at_fin(truncated: bytes) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert asm.feed(TEXT, False, False, b"abc" + truncated) is None
    assert asm.feed(CONT, False, False, b"") is None  # still merely incomplete
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, True, False, b"")
    assert_violation(exc, CloseCode.INVALID_TEXT)
    assert not asm.in_progress


@pytest.mark.parametrize("truncated", TRUNCATED)
def test_truncated_sequence_in_the_final_fragment(truncated: bytes) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    assert asm.feed(TEXT, False, False, b"abc") is None
    with pytest.raises(ProtocolViolation) as exc:
        asm.feed(CONT, True, False, b"d" + truncated)
    assert_violation(exc, CloseCode.INVALID_TEXT)


@pytest.mark.parametrize("truncated", TRUNCATED)
def test_truncated_single_frame_text(truncated: bytes) -> None:
    with pytest.raises(ProtocolViolation) as exc:
        FrameAssembler(LIMIT, max_fragments=2 * LIMIT).feed(TEXT, True, False, b"abc" + truncated)
    assert_violation(exc, CloseCode.INVALID_TEXT)


@pytest.mark.parametrize("bad", INVALID_UTF8)
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_binary_is_not_checked(bad: bytes, parts: int) -> None:
    asm = FrameAssembler(LIMIT, max_fragments=2 * LIMIT)
    payload = b"ok " + bad + b"\xce"
    assert feed_all(asm, BINARY, split(payload, parts)) == (BINARY, payload)


# --------------------------------------------------------------------------- is_valid_utf8


@pytest.mark.parametrize(
    "data",
    [b"", b"plain ascii", MULTIBYTE, "\U0010ffff".encode(), "\ud7ff\ue000".encode()],
)
def test_is_valid_utf8_accepts(data: bytes) -> None:
    assert is_valid_utf8(data)


@pytest.mark.parametrize("data", [*INVALID_UTF8, pytest.param(b"abc\xce", id="truncated")])
def test_is_valid_utf8_rejects(data: bytes) -> None:
    assert not is_valid_utf8(data)


# --------------------------------------------------------------------------- close_reply


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


@pytest.mark.parametrize("code", [*range(1000, 1004), *range(1007, 1015), 3000, 3999, 4000, 4999])
@pytest.mark.parametrize("reason", [b"", b"bye", "au revoir, κόσμε".encode()])
def test_close_reply_echoes_valid_codes(code: int, reason: bytes) -> None:
    assert close_reply(close_payload(code, reason)) == (code, b"")


def test_close_reply_to_empty_payload_is_normal() -> None:
    assert close_reply(b"") == (CloseCode.NORMAL, b"")


@pytest.mark.parametrize("payload", [b"\x03", b"\xe8"])
def test_close_reply_to_one_byte_payload(payload: bytes) -> None:
    code, reason = close_reply(payload)
    assert code == CloseCode.PROTOCOL_ERROR
    assert reason.isascii()


@pytest.mark.parametrize(
    "code",
    [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 6000, 65535],
)
def test_close_reply_to_invalid_codes(code: int) -> None:
    assert close_reply(close_payload(code))[0] == CloseCode.PROTOCOL_ERROR
    assert close_reply(close_payload(code, b"reason"))[0] == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("bad", INVALID_UTF8)
@pytest.mark.parametrize("code", [1000, 4000])
def test_close_reply_to_invalid_utf8_reason(code: int, bad: bytes) -> None:
    assert close_reply(close_payload(code, b"why " + bad))[0] == CloseCode.PROTOCOL_ERROR


def test_fragment_floods_are_refused_and_hold_no_memory() -> None:
    asm = FrameAssembler(1 << 20)  # the default cap: one fragment per 64 bytes allowed
    assert asm.feed(TEXT, False, False, b"x") is None
    with pytest.raises(ProtocolViolation) as exc:
        for _ in range((1 << 20) // 64 + 1):
            asm.feed(CONT, False, False, b"")  # empty CONTINUATION frames
    assert_violation(exc, CloseCode.POLICY_VIOLATION)
    assert not asm.in_progress


def test_default_fragment_cap_admits_64_byte_fragments_at_the_size_limit() -> None:
    limit = 64 * 100
    asm = FrameAssembler(limit)
    chunks = split(b"y" * limit, 100)
    assert feed_all(asm, BINARY, chunks) == (BINARY, b"y" * limit)


def test_small_limits_still_allow_sixteen_fragments() -> None:
    asm = FrameAssembler(10)
    assert feed_all(asm, TEXT, [b""] * 15 + [b"hi"]) == (TEXT, b"hi")
