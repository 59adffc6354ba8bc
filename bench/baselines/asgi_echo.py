"""A bare ASGI WebSocket echo: the floor of any ASGI server, shared by two baselines.

Per message it does one JSON decode and one encode, replying
``{"type":"result","id":...,"data":...}`` like fastcomm's bench app and the
FastAPI baseline, with no framework in between. ``granian_asgi_echo.py``
and ``uvicorn_asgi_echo.py`` serve it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

__all__ = ["app"]

Event = MutableMapping[str, Any]
_decode = msgspec.json.decode
_encode = msgspec.json.encode


async def app(
    scope: Event, receive: Callable[[], Awaitable[Event]], send: Callable[[Event], Awaitable[None]]
) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"404 not found\n"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        text = event.get("text")
        msg: Any = _decode(text if text is not None else event.get("bytes") or b"")
        reply = {"type": "result", "id": msg.get("id"), "data": msg.get("data")}
        await send({"type": "websocket.send", "text": _encode(reply).decode()})
