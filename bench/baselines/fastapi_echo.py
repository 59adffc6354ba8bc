"""FastAPI on uvicorn: the WebSocket echo a FastAPI user would write.

    python bench/baselines/fastapi_echo.py PORT

``receive_json`` / ``send_json`` per message, replying
``{"type":"result","id":...,"data":...}`` like fastcomm's bench app. uvicorn
runs with its defaults (uvloop and its default WebSocket implementation when
installed), one worker, access log off.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

__all__ = ["app", "main"]

app = FastAPI()


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            msg = await websocket.receive_json()
            await websocket.send_json(
                {"type": "result", "id": msg.get("id"), "data": msg.get("data")}
            )
    except WebSocketDisconnect:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
