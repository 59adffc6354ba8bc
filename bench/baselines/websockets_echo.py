"""The ``websockets`` library: the echo server its documentation suggests.

    python bench/baselines/websockets_echo.py PORT

``json.loads`` / ``json.dumps`` per message, replying
``{"type":"result","id":...,"data":...}`` like fastcomm's bench app, on the
asyncio server of ``websockets`` running on uvloop (its fastest setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop
from websockets.asyncio.server import ServerConnection, serve

__all__ = ["main"]


async def echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        msg = json.loads(message)
        await websocket.send(
            json.dumps({"type": "result", "id": msg.get("id"), "data": msg.get("data")})
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    async def run() -> None:
        async with serve(echo, args.host, args.port, compression=None, max_size=2**24):
            await asyncio.get_running_loop().create_future()

    uvloop.run(run())


if __name__ == "__main__":
    main()
