"""The ASGI application of a node: WebSocket endpoint, HTTP endpoints, lifespan.

``AsgiApp(app, config)`` serves ``config.path`` (WebSocket) and the node's
HTTP endpoints below whatever ``root_path`` it is given, so
``fastapi_app.mount("/realtime", asgi)`` serves ``/realtime/ws`` and
``/realtime/healthz``. Run it with any ASGI server::

    uvicorn myapp:app                    # an App is itself an ASGI app
    granian --interface asgi myapp:app

The node starts on ``lifespan.startup`` and drains on ``lifespan.shutdown``;
without a lifespan (a mount) it starts with the first request, and the
parent should ``await asgi.shutdown()`` when it stops.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastcomm.config import Config
from fastcomm.http.api import HttpApi
from fastcomm.http.endpoints import Endpoints
from fastcomm.node.node import Node
from fastcomm.transports.asgi.handshake import serve_websocket
from fastcomm.transports.asgi.http import serve_http
from fastcomm.transports.asgi.lifespan import Lifecycle, run_lifespan
from fastcomm.transports.asgi.types import Receive, Scope, Send, route_path

if TYPE_CHECKING:
    from fastcomm.app import App

__all__ = ["AsgiApp"]

log = logging.getLogger("fastcomm.server")


class AsgiApp:
    """An ASGI 3 application serving one :class:`~fastcomm.node.Node` of ``app``.

    ``node`` is the node (sessions, channels, stats, the server API);
    :meth:`startup`/:meth:`shutdown` start and drain it by hand, for parents
    that do not forward lifespan events.
    """

    def __init__(self, app: App, config: Config) -> None:
        self.config = config
        self.node = Node(app, config)
        self.endpoints = Endpoints(self.node)
        self.api: HttpApi | None = None
        if config.api_key is not None:  # the HTTP server API, under /api on this port
            self.api = HttpApi(
                self.node.api,
                api_key=config.api_key,
                max_body=config.api_max_body,
                max_channel_length=config.max_channel_length,
            )
        self.lifecycle = Lifecycle(self.node)

    async def startup(self) -> None:
        """Start the node (what ``lifespan.startup`` does)."""
        self.lifecycle.start()

    async def shutdown(self) -> None:
        """Drain the node: close every connection with 1001, then release it."""
        await self.lifecycle.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await run_lifespan(self.lifecycle, receive, send)
            return
        self.lifecycle.start()  # lazily, when no lifespan came first (a no-op after it)
        path = route_path(scope)
        if kind == "websocket":
            await serve_websocket(self.node, path, scope, receive, send)
        elif kind == "http":
            await serve_http(self.endpoints, path, scope, receive, send, self.api)
