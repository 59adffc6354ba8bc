"""Holes an attacker or a careless client found, each closed and kept closed.

Real sockets against a real server: fragment and PING floods, poisoned
publications, out-of-range numbers, handshake bytes that are not UTF-8,
resume tokens that rotate, and the caps on what a client can make the
server hold.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from typing import Any

import websockets

import fastcomm
from fastcomm.channels.memory import MemoryBroker
from tests.integration.conftest import eventually, resumable, running
from tests.integration.rawws import RawWS

MASK = b"\x00\x00\x00\x00"  # a zero mask: the payload goes as is


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame with a zero mask (valid, and cheap to build in bulk)."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", first, 0x80 | n) + MASK + payload
    return struct.pack("!BBH", first, 0x80 | 126, n) + MASK + payload


async def rtt(ws: Any, rid: int) -> float:
    start = time.perf_counter()
    await ws.send(json.dumps({"type": "ping", "id": rid}))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if reply.get("id") == rid:
            return time.perf_counter() - start


async def test_empty_fragment_flood_is_closed_and_others_stay_served() -> None:
    async with running() as server, websockets.connect(server.url) as observer:
        await observer.recv()
        raw, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        await raw.recv_frame()
        flood = masked(1, b"x", fin=False) + masked(0, b"", fin=False) * 50_000
        raw.writer.write(flood)
        code, _ = await raw.recv_until_close(timeout=10)
        assert code in (1008, 4029)  # too many fragments, or over the frame budget
        latencies = [await rtt(observer, i) for i in range(1, 21)]
        assert max(latencies) < 0.5
        raw.close()


async def test_ping_flood_from_a_peer_that_never_reads_is_bounded() -> None:
    """A peer that sends PINGs and never reads: the PONGs it is owed stay bounded
    (TCP backpressure stops the server reading it, and what is queued counts
    against max_outbound_buffer); other clients are served meanwhile."""
    limit = 256 * 1024
    budget = {"frame_burst": 10**9, "frame_rate_limit": 1e9}
    async with running(max_outbound_buffer=limit, **budget) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await eventually(lambda: server.node.connections)
        (conn,) = server.node.connections
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        chunk = masked(9, b"p" * 125) * 256
        sent, most = 0, 0
        while sent < 64 * 1024 * 1024 and not conn.closed:
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, chunk), 1.0)
            except (TimeoutError, OSError):
                break  # the server stopped reading a peer that does not read
            sent += len(chunk)
            most = max(most, conn.transport.buffered())
        assert most <= limit + 4096
        assert sent < 16 * 1024 * 1024 or conn.closed
        async with websockets.connect(server.url) as other:
            await other.recv()
            assert await rtt(other, 1) < 0.5
        sock.close()


async def test_frame_budget_counts_control_frames() -> None:
    async with running(frame_burst=100, frame_rate_limit=10) as server:
        raw, _, _ = await RawWS.connect("127.0.0.1", server.port)
        await raw.recv_frame()
        raw.writer.write(masked(9, b"") * 200)
        code, _ = await raw.recv_until_close()
        assert code == 4029
        raw.close()


async def test_poisoned_publications_are_refused_before_acknowledgement() -> None:
    async with running() as server, websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.send('{"type":"subscribe","id":1,"channel":"c"}')
        assert json.loads(await ws.recv())["type"] == "subscribed"
        deep = "[" * 200 + "]" * 200
        poisons = ((2, deep), (3, "1180591620717411303424"), (4, '{"a":[1,2,-9e999]}'))
        for rid, data in poisons:
            await ws.send(f'{{"type":"publish","id":{rid},"channel":"c","data":{data}}}')
            reply = json.loads(await ws.recv())
            assert (reply["id"], reply["code"]) == (rid, "invalid_message"), reply
            assert reply["details"]["path"].startswith("$.data")
        await ws.send('{"type":"publish","id":5,"channel":"c","data":{"fine":true}}')
        await ws.send('{"type":"history","id":9,"channel":"c"}')
        while (reply := json.loads(await ws.recv()))["type"] != "history":
            pass
        assert len(reply["messages"]) == 1  # only the deliverable one was stored
    assert server.node.stats.errors.get("1011") is None


async def test_out_of_range_numbers_and_deep_nesting_are_invalid_message() -> None:
    async with running() as server, websockets.connect(server.url) as ws:
        await ws.recv()
        requests = [
            '{"type":"subscribe","id":1,"channel":"c"}',
            '{"type":"history","id":2,"channel":"c","since":9223372036854775808}',
            '{"type":"subscribe","id":3,"channel":"d","recover":'
            '{"offset":1180591620717411303424,"epoch":"x"}}',
            '{"type":"ping","id":4,"x":' + "[" * 10_000 + "]" * 10_000 + "}",
        ]
        for text in requests:
            await ws.send(text)
        got = [json.loads(await ws.recv()) for _ in requests]
        replies = {r["id"]: r for r in got}
        assert replies[1]["type"] == "subscribed"
        assert replies[2]["details"]["path"] == "$.since"
        assert replies[3]["details"]["path"] == "$.recover.offset"
        assert replies[None]["details"]["reason"] == "nested too deeply"  # no id to be found
        assert [r["code"] for r in got if r["type"] == "error"] == ["invalid_message"] * 3
        assert ws.close_code is None  # still open


async def test_handshake_bytes_that_are_not_utf8_get_400() -> None:
    app = fastcomm.App()
    seen: list[str | None] = []

    @app.on_connect
    def who(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
        seen.append(request.token)
        return fastcomm.Identity(user=request.token)

    async with running(app) as server:
        for extra, path in (
            (b"Authorization: Bearer \xff\xfe\r\n", b"/ws"),
            (b"", b"/ws?token=%ff"),
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 400"), head
            writer.close()
        assert seen == []  # the hook never saw the bytes
        assert server.node.stats.handshake_rejects[400] == 2


async def test_resume_tokens_rotate() -> None:
    async with running() as server:
        ws = await websockets.connect(server.url)
        first = json.loads(await ws.recv())
        await ws.close()
        await eventually(lambda: not server.node.connections)
        ws = await websockets.connect(f"{server.url}?resume={first['resume_token']}")
        second = json.loads(await ws.recv())
        assert second["resumed"] and second["session"] == first["session"]
        assert second["resume_token"] != first["resume_token"]
        await ws.close()
        await eventually(lambda: not server.node.connections)
        replay = await websockets.connect(f"{server.url}?resume={first['resume_token']}")
        assert json.loads(await replay.recv())["resumed"] is False  # the old token is spent
        await replay.close()


async def test_resume_token_may_travel_in_a_header_instead_of_the_url() -> None:
    async with running() as server:
        ws = await websockets.connect(server.url)
        first = json.loads(await ws.recv())
        await ws.close()
        await eventually(lambda: not server.node.connections)
        headers = {"Fastcomm-Resume": first["resume_token"]}
        async with websockets.connect(server.url, additional_headers=headers) as again:
            welcome = json.loads(await again.recv())
        assert welcome["resumed"] and welcome["session"] == first["session"]


async def test_resumable_sessions_and_channels_are_capped() -> None:
    async with running(max_resumable_sessions=3, max_channels=2) as server:
        for _ in range(5):
            async with websockets.connect(server.url) as ws:
                await ws.recv()
        await eventually(lambda: not server.node.connections)
        assert resumable(server) == 3
        async with websockets.connect(server.url) as ws:
            await ws.recv()
            for rid, channel in enumerate(("a", "b", "c"), 1):
                await ws.send(json.dumps({"type": "subscribe", "id": rid, "channel": channel}))
            got = [json.loads(await ws.recv()) for _ in range(3)]
        replies = sorted(got, key=lambda r: r["id"])
        assert [r["type"] for r in replies] == ["subscribed", "subscribed", "error"]
        assert replies[2]["code"] == "limit_exceeded"


async def test_a_silent_channel_costs_the_broker_nothing() -> None:
    async with running() as server, websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.send('{"type":"subscribe","id":1,"channel":"quiet"}')
        reply = json.loads(await ws.recv())
        assert (reply["type"], reply["offset"]) == ("subscribed", 0)
        broker = server.node.broker
        assert isinstance(broker, MemoryBroker)
        assert broker.streams == 0  # subscribed, never published: no stream is kept
        await server.app.publish("quiet", 1)
        assert broker.streams == 1
