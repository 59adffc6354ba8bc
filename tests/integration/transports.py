"""One App on three transports: ``served(app, transport, **options)``.

``picows`` is :class:`fastcomm.Server`; ``asgi-uvicorn`` is the ASGI
transport under ``uvicorn.Server`` and ``granian`` the ASGI transport under
granian's embedded server (its ``asgi`` interface), both on the test's event
loop and a free port. :class:`Served` gives the URL, the port, the node and
``stop()`` (what the server does on SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import fastcomm
from fastcomm.config import build_config
from fastcomm.node.node import Node
from fastcomm.transports.asgi import AsgiApp
from tests.waiting import eventually

__all__ = ["TRANSPORTS", "Served", "served"]

TRANSPORTS = ("picows", "asgi-uvicorn", "granian")
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Served:
    """A running server: ``url`` (the WebSocket endpoint), ``port``, ``node``, ``stop()``."""

    def __init__(
        self, transport: str, node: Node, port: int, stop: Callable[[], Awaitable[None]]
    ) -> None:
        self.transport = transport
        self.node = node
        self.port = port
        self._stop = stop
        self._stopped = False

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}{self.node.config.path}"

    async def stop(self) -> None:
        """Shut the server down the way its signal handler would (once)."""
        if not self._stopped:
            self._stopped = True
            await self._stop()


@asynccontextmanager
async def _picows(app: fastcomm.App, options: dict[str, Any]) -> AsyncIterator[Served]:
    server = fastcomm.Server(app, port=0, **options)
    await server.start()
    served = Served("picows", server.node, server.port, server.stop)
    try:
        yield served
    finally:
        await served.stop()


@asynccontextmanager
async def _uvicorn(app: fastcomm.App, options: dict[str, Any]) -> AsyncIterator[Served]:
    import uvicorn

    asgi = AsgiApp(app, build_config({"port": 0, **options}, env={}))
    port = _free_port()
    config = uvicorn.Config(asgi, host=HOST, port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())

    async def stop() -> None:
        server.should_exit = True
        await asyncio.wait_for(task, 20)

    try:
        await eventually(lambda: server.started or task.done(), 10.0, "uvicorn startup")
        if task.done():
            task.result()
        served = Served("asgi-uvicorn", asgi.node, port, stop)
        yield served
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@asynccontextmanager
async def _granian(app: fastcomm.App, options: dict[str, Any]) -> AsyncIterator[Served]:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    asgi = AsgiApp(app, build_config({"port": 0, **options}, env={}))
    port = _free_port()
    logging.getLogger("_granian").setLevel(logging.WARNING)
    server = Server(asgi, address=HOST, port=port, interface=Interfaces.ASGI, log_enabled=False)
    task = asyncio.get_running_loop().create_task(server.serve())

    async def stop() -> None:
        server.stop()
        await asyncio.wait_for(task, 20)

    try:
        await eventually(lambda: asgi.node.accepting or task.done(), 10.0, "granian startup")
        if task.done():
            task.result()
        yield Served("granian", asgi.node, port, stop)
    finally:
        if not task.done():
            server.stop()
            await asyncio.wait_for(task, 20)


_RUNNERS = {"picows": _picows, "asgi-uvicorn": _uvicorn, "granian": _granian}


@asynccontextmanager
async def served(
    app: fastcomm.App | None = None, transport: str = "picows", **options: Any
) -> AsyncIterator[Served]:
    """``app`` (default: an empty App) served on ``transport`` for the block."""
    async with _RUNNERS[transport](app if app is not None else fastcomm.App(), options) as s:
        yield s
