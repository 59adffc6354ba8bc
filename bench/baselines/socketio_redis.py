"""python-socketio with its AsyncRedisManager: what a Python user would pick to
fan out over several processes. A comparison baseline only, run from a venv of
its own (not a fastcomm dependency):

    python3 -m venv /tmp/venv-sio
    /tmp/venv-sio/bin/pip install python-socketio aiohttp redis hiredis uvloop
    /tmp/venv-sio/bin/python bench/baselines/socketio_redis.py PORT REDIS_URL

Served by aiohttp on uvloop, WebSocket transport only. Event ``join`` puts the
client in room ``bench`` (acknowledged with ``true``); event ``pub`` emits its
data as event ``msg`` to the room: delivered here directly and, through one
Redis PUBLISH, by every other process sharing the Redis.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import socketio
import uvloop
from aiohttp import web

__all__ = ["main"]


def build(redis_url: str) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(
        client_manager=manager,
        async_mode="aiohttp",
        transports=["websocket"],
        cors_allowed_origins="*",
    )
    app = web.Application()
    sio.attach(app)

    @sio.on("join")
    async def join(sid: str, *_: Any) -> bool:
        await sio.enter_room(sid, "bench")
        return True

    @sio.on("pub")
    async def pub(sid: str, data: Any) -> None:
        await sio.emit("msg", data, room="bench")

    return app


async def serve(port: int, redis_url: str) -> None:
    runner = web.AppRunner(build(redis_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until SIGTERM


def main() -> None:
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2]))


if __name__ == "__main__":
    main()
