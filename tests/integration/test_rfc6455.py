"""RFC 6455 rules picows leaves to fastcomm, checked with raw frames."""

from __future__ import annotations

import json

import pytest
import websockets

import fastcomm
from tests.integration.conftest import running
from tests.integration.rawws import RawWS


async def connect(server: fastcomm.Server) -> RawWS:
    ws, status, _ = await RawWS.connect("127.0.0.1", server.port)
    assert status == 101
    opcode, payload = await ws.recv_frame()
    assert opcode == 1 and json.loads(payload)["type"] == "welcome"
    return ws


async def test_fragmented_message_is_reassembled() -> None:
    async with running() as server:
        ws = await connect(server)
        msg = b'{"type":"ping","id":42}'
        ws.send_frame(1, msg[:5], fin=False)
        ws.send_frame(9, b"interleaved ping")  # control frames may interleave
        ws.send_frame(0, msg[5:12], fin=False)
        ws.send_frame(0, msg[12:], fin=True)
        replies = []
        while len(replies) < 1:
            opcode, payload = await ws.recv_frame()
            if opcode == 1:
                replies.append(json.loads(payload))
            else:
                assert opcode == 10 and payload == b"interleaved ping"
        assert replies == [{"type": "pong", "id": 42}]
        ws.close()


async def test_fragmented_with_websockets_library() -> None:
    async with running() as server, websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.send(iter(['{"type":', '"ping",', '"id":5}']))
        assert json.loads(await ws.recv()) == {"type": "pong", "id": 5}


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([(1, b'{"type":"ping","x":"\xff"}', True, 0)], 1007),  # invalid UTF-8 in one frame
        ([(1, b'{"a":"\xe2\x82', False, 0), (0, b'"}', True, 0)], 1007),  # truncated sequence
        ([(0, b"orphan", True, 0)], 1002),  # continuation without start
        ([(1, b"a", False, 0), (1, b"b", True, 0)], 1002),  # new start inside fragmented
        ([(1, b'{"type":"ping"}', True, 4)], 1002),  # RSV1 without extension
        ([(1, b'{"type":"ping"}', True, 1)], 1002),  # RSV3
        ([(3, b"", True, 0)], 1002),  # reserved data opcode
        ([(11, b"", True, 0)], 1002),  # reserved control opcode
    ],
)
async def test_protocol_violations_close_with_the_right_code(
    frames: list[tuple[int, bytes, bool, int]], code: int
) -> None:
    async with running() as server:
        ws = await connect(server)
        for opcode, payload, fin, rsv in frames:
            ws.send_frame(opcode, payload, fin=fin, rsv=rsv)
        received, _ = await ws.recv_until_close()
        assert received == code
        ws.close()
        # Other clients are unaffected.
        other = await connect(server)
        other.send_text('{"type":"ping","id":1}')
        assert json.loads((await other.recv_frame())[1]) == {"type": "pong", "id": 1}
        other.close()


async def test_valid_utf8_split_across_fragments_is_accepted() -> None:
    async with running() as server:
        ws = await connect(server)
        text = '{"type":"ping","id":3,"note":"h\u00e9llo \u20ac"}'.encode()
        cut = text.index(b"\xe2") + 1  # split inside the euro sign
        ws.send_frame(1, text[:cut], fin=False)
        ws.send_frame(0, text[cut:], fin=True)
        assert json.loads((await ws.recv_frame())[1]) == {"type": "pong", "id": 3}
        ws.close()


@pytest.mark.parametrize("fragmented", [False, True])
async def test_message_over_max_size_is_1009(fragmented: bool) -> None:
    async with running(max_message_size=1000) as server:
        ws = await connect(server)
        body = b'{"type":"ping","pad":"' + b"x" * 1000 + b'"}'
        if fragmented:  # every fragment is small; the whole message is not
            for i in range(0, len(body), 100):
                chunk = body[i : i + 100]
                ws.send_frame(1 if i == 0 else 0, chunk, fin=i + 100 >= len(body))
        else:
            ws.send_frame(1, body)
        code, _ = await ws.recv_until_close()
        assert code == 1009
        ws.close()


async def test_message_at_max_size_is_accepted() -> None:
    async with running(max_message_size=1000) as server:
        ws = await connect(server)
        head = b'{"type":"ping","id":1,"pad":"'
        body = head + b"x" * (1000 - len(head) - 2) + b'"}'
        assert len(body) == 1000
        ws.send_frame(1, body)
        assert json.loads((await ws.recv_frame())[1]) == {"type": "pong", "id": 1}
        ws.close()


@pytest.mark.parametrize(
    ("sent", "expected"),
    [(1000, 1000), (1001, 1001), (3000, 3000), (4999, 4999), (None, 1000)],
)
async def test_close_handshake_echoes_valid_codes(sent: int | None, expected: int) -> None:
    async with running() as server:
        ws = await connect(server)
        ws.send_close(sent)
        code, _ = await ws.recv_until_close()
        assert code == expected
        await ws.wait_eof()  # the server then closes the TCP connection


@pytest.mark.parametrize("bad", [999, 1004, 1005, 1006, 1015, 2999, 5000])
async def test_close_with_invalid_code_is_answered_with_1002(bad: int) -> None:
    async with running() as server:
        ws = await connect(server)
        ws.send_close(bad)
        code, _ = await ws.recv_until_close()
        assert code == 1002


async def test_close_with_invalid_utf8_reason_is_1007() -> None:
    # picows validates the reason itself and answers 1007 (RFC 6455 allows 1002 or 1007).
    async with running() as server:
        ws = await connect(server)
        ws.send_close(1000, b"\xff\xfe")
        code, _ = await ws.recv_until_close()
        assert code == 1007


async def test_clean_close_with_websockets_library() -> None:
    async with running() as server, websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.close(code=1000, reason="bye")
        assert ws.close_code == 1000
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 1000


async def test_firefox_connection_header_is_accepted() -> None:
    async with running() as server:
        ws, status, _ = await RawWS.connect(
            "127.0.0.1", server.port, connection="keep-alive, Upgrade"
        )
        assert status == 101
        opcode, payload = await ws.recv_frame()
        assert opcode == 1
        assert json.loads(payload)["type"] == "welcome"
        ws.close()
