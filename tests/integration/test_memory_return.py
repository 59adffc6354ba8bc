"""A burst of slow consumers: server memory goes back down once they are gone."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys

import websockets

from fastcomm.loadgen.target import ChildServer, Probe

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SUBSCRIBE = b'{"type":"subscribe","channel":"big"}'


def rss_mib(pid: int) -> float:
    return Probe(pid).rss_kib() / 1024


async def test_memory_is_returned_after_a_burst_of_slow_consumers() -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    command = [
        sys.executable, "-m", "fastcomm", "serve", "--port", "{port}", "--log-level",
        "warning", "--max-outbound-buffer", "8MiB", "--history-size", "0",
    ]  # fmt: skip
    with ChildServer(command, env=env, ready="/readyz") as server:
        base = rss_mib(server.pid)
        slow = []
        for _ in range(60):  # subscribers that never read
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port, limit=1024)
            sock = writer.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            writer.write(UPGRADE)
            await reader.readuntil(b"\r\n\r\n")
            writer.write(struct.pack("!BB", 0x81, 0x80 | len(SUBSCRIBE)) + bytes(4) + SUBSCRIBE)
            slow.append(writer)
        await asyncio.sleep(0.5)
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None) as pub:
            await pub.recv()
            await pub.send('{"type":"subscribe","id":1,"channel":"big"}')
            await pub.recv()
            reading = asyncio.create_task(_drain(pub))
            data = "x" * 60_000
            for _ in range(300):
                await pub.send(json.dumps({"type": "publish", "channel": "big", "data": data}))
            await asyncio.sleep(2)
            peak = rss_mib(server.pid)
            for writer in slow:
                writer.close()
            await asyncio.sleep(3)  # the sweep runs at least once a second
            after = rss_mib(server.pid)
            reading.cancel()
    print(f"\nserver RSS: base {base:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB")
    assert peak - base > 8, "the burst did not grow the server: the test measures nothing"
    assert after - base < 0.6 * (peak - base)


async def _drain(ws: websockets.ClientConnection) -> None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed:
        return
