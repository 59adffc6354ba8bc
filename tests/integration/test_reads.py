"""Frames that arrive in one read with a CLOSE or a refused frame after them.

picows parses one frame ahead; fastcomm hands it a CLOSE, or a frame it will
refuse, only once the frames before are delivered, and nothing after it
(fastcomm/transports/picows/reads.py). Each case is sent in one write, or
byte by byte, so that frame headers and CLOSE frames straddle reads.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from tests.integration.conftest import running
from tests.integration.rawws import RawWS

frame = RawWS.frame
TEXT, BINARY, CLOSE, PING = 1, 2, 8, 9


def close(code: int) -> bytes:
    return frame(CLOSE, struct.pack("!H", code))


async def echo_client(port: int) -> RawWS:
    ws, status, _ = await RawWS.connect("127.0.0.1", port)
    assert status == 101
    return ws


async def send(ws: RawWS, data: bytes, bytewise: bool, until: int) -> None:
    """``data`` in one write, or its first ``until`` bytes one by one: the server
    closes there, and a write after that would reset the connection before the
    client has read the answer."""
    if not bytewise:
        ws.writer.write(data)
        await ws.writer.drain()
        return
    for i in range(until):
        ws.writer.write(data[i : i + 1])
        await ws.writer.drain()
        await asyncio.sleep(0.002)


async def frames_until_eof(ws: RawWS) -> list[tuple[int, bytes]]:
    seen = []
    while True:
        try:
            seen.append(await ws.recv_frame())
        except EOFError:
            return seen


@pytest.mark.parametrize("bytewise", [False, True], ids=["one-read", "byte-by-byte"])
async def test_second_close_is_not_answered_with_1002(bytewise: bool) -> None:
    async with running(echo=True) as server:
        ws = await echo_client(server.port)
        first = frame(TEXT, b"hello") + close(1000)
        await send(ws, first + close(1001), bytewise, len(first))
        assert await frames_until_eof(ws) == [(TEXT, b"hello"), (CLOSE, struct.pack("!H", 1000))]
        ws.close()


@pytest.mark.parametrize("bytewise", [False, True], ids=["one-read", "byte-by-byte"])
async def test_nothing_after_a_close_is_processed(bytewise: bool) -> None:
    async with running(echo=True) as server:
        ws = await echo_client(server.port)
        after = frame(TEXT, b"late") + frame(PING, b"p") + frame(3, b"")
        first = frame(BINARY, b"\x00\x01") + close(3000)
        await send(ws, first + after, bytewise, len(first))
        assert await frames_until_eof(ws) == [
            (BINARY, b"\x00\x01"),
            (CLOSE, struct.pack("!H", 3000)),
        ]
        ws.close()


@pytest.mark.parametrize(
    "bad",
    [
        frame(5, b""),  # reserved data opcode
        frame(11, b"x"),  # reserved control opcode
        frame(PING, b"p", fin=False),  # fragmented control frame
        frame(TEXT, b"unmasked", mask=False),
    ],
    ids=["opcode-5", "opcode-11", "fragmented-ping", "unmasked"],
)
@pytest.mark.parametrize("bytewise", [False, True], ids=["one-read", "byte-by-byte"])
async def test_frame_before_a_refused_one_is_answered_first(bad: bytes, bytewise: bool) -> None:
    async with running(echo=True) as server:
        ws = await echo_client(server.port)
        first = frame(TEXT, b"first")
        await send(ws, first + bad + frame(TEXT, b"never"), bytewise, len(first) + 2)
        code, seen = await ws.recv_until_close()
        assert (code, seen) == (1002, [b"first"])
        ws.close()


async def test_invalid_close_after_a_message_comes_after_its_answer() -> None:
    async with running(echo=True) as server:
        ws = await echo_client(server.port)
        ws.writer.write(frame(TEXT, b"first") + close(1005))  # 1005 is never sent
        code, seen = await ws.recv_until_close()
        assert (code, seen) == (1002, [b"first"])
        ws.close()


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 300_000])
async def test_long_frames_then_close_in_one_write(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    async with running(echo=True) as server:
        ws = await echo_client(server.port)
        ws.writer.write(frame(BINARY, payload) + frame(TEXT, b"x") + close(1000) + close(1000))
        assert await frames_until_eof(ws) == [
            (BINARY, payload),
            (TEXT, b"x"),
            (CLOSE, struct.pack("!H", 1000)),
        ]
        ws.close()


async def test_frames_before_the_handshake_ends_are_scanned() -> None:
    async with running(echo=True) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        request = (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        writer.write(request + frame(TEXT, b"early") + close(1000) + close(1000))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        ws = RawWS(reader, writer)
        assert await frames_until_eof(ws) == [(TEXT, b"early"), (CLOSE, struct.pack("!H", 1000))]
        ws.close()
