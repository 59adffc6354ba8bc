"""A burst of slow consumers: server memory goes back down once they are gone."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys
import urllib.request
from typing import Any

import websockets

from fastcomm.loadgen.target import ChildServer, Probe
from tests.waiting import eventually

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SUBSCRIBE = b'{"type":"subscribe","channel":"big"}'


def rss_mib(pid: int) -> float:
    return Probe(pid).rss_kib() / 1024


async def status(port: int) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as reply:
            return json.loads(reply.read())  # type: ignore[no-any-return]

    return await asyncio.to_thread(get)


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

        async def subscribed() -> bool:
            return (await status(server.port))["messages_by_type"].get("subscribe", 0) == 60

        await eventually(subscribed, 15, "the 60 slow consumers subscribed")
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None) as pub:
            await pub.recv()
            await pub.send('{"type":"subscribe","id":1,"channel":"big"}')
            await pub.recv()
            received = [0]
            reading = asyncio.create_task(_drain(pub, received))
            data = "x" * 60_000
            for _ in range(300):
                await pub.send(json.dumps({"type": "publish", "channel": "big", "data": data}))
            # Its own copies back: the server has fanned out all 300 to the slow ones.
            await eventually(lambda: received[0] == 300, 30, lambda: f"{received[0]} of 300")
            peak = rss_mib(server.pid)
            for writer in slow:
                writer.close()

            async def alone() -> bool:
                return (await status(server.port))["connections"] == 1

            await eventually(alone, 15, "the slow consumers are gone")
            assert peak - base > 8, "the burst did not grow the server: the test measures nothing"
            # Returned within a few sweeps (the sweep runs at least once a second).
            returned = 0.6 * (peak - base)
            after = await eventually(
                lambda: (rss := rss_mib(server.pid)) - base < returned and rss,
                10,
                lambda: f"RSS base {base:.0f}, peak {peak:.0f}, now {rss_mib(server.pid):.0f} MiB",
                interval=0.2,
            )
            reading.cancel()
    print(f"\nserver RSS: base {base:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB")


async def _drain(ws: websockets.ClientConnection, received: list[int]) -> None:
    try:
        while True:
            if json.loads(await ws.recv()).get("type") == "message":
                received[0] += 1
    except websockets.ConnectionClosed:
        return
