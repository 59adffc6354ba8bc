"""frame_header: where picows' frames end, and which ones it refuses on their header."""

from __future__ import annotations

import struct

import pytest

from fastcomm.transports.picows.reads import frame_header
from tests.integration.rawws import RawWS


@pytest.mark.parametrize(
    ("size", "head"), [(0, 6), (125, 6), (126, 8), (65535, 8), (65536, 14), (70000, 14)]
)
def test_sizes_of_masked_frames(size: int, head: int) -> None:
    data = RawWS.frame(2, bytes(size))
    assert frame_header(data, 0, len(data)) == (2, head, size)
    assert head + size == len(data)


def test_header_at_an_offset_and_split_headers() -> None:
    data = b"xx" + RawWS.frame(1, bytes(300))
    assert frame_header(data, 2, len(data)) == (1, 8, 300)
    for stop in range(2, 2 + 8):
        assert frame_header(data, 2, stop) is None  # the header is not all there yet
    assert frame_header(data, 2, 2 + 8) == (1, 8, 300)  # the payload need not be


@pytest.mark.parametrize(
    "data",
    [
        RawWS.frame(3, b""),  # reserved data opcodes
        RawWS.frame(7, b""),
        RawWS.frame(11, b""),  # reserved control opcodes
        RawWS.frame(15, b""),
        RawWS.frame(9, b"p", fin=False),  # fragmented control frame
        RawWS.frame(8, bytes(126)),  # control frame over 125 bytes
        RawWS.frame(1, b"a", mask=False),  # a client's frames are masked
        bytes([0x81, 0x80 | 126]) + struct.pack("!H", 125) + bytes(4),  # not the shortest
        bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 65535) + bytes(4),
        bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + bytes(4),
    ],
)
def test_frames_picows_refuses_on_their_header(data: bytes) -> None:
    header = frame_header(data, 0, len(data))
    assert header is not None and header[0] == -1


@pytest.mark.parametrize("opcode", [0, 1, 2, 8, 9, 10])
def test_valid_opcodes(opcode: int) -> None:
    data = RawWS.frame(opcode, b"ab")
    assert frame_header(data, 0, len(data)) == (opcode, 6, 2)
