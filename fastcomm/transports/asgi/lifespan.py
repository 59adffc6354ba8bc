"""Starting and draining the node, from ASGI lifespan events or lazily.

An ASGI server that runs the lifespan protocol (uvicorn, granian's ``asgi``
interface) starts the node on ``lifespan.startup`` and drains it on
``lifespan.shutdown``. A server or parent app that sends no lifespan (a
FastAPI/Starlette mount: sub-application lifespans are not run) gets the
node started lazily by the first request; draining it is then up to the
parent, which can ``await asgi_app.shutdown()`` in its own lifespan.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

from fastcomm.transports.asgi.types import Receive, Send

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["Lifecycle", "run_lifespan", "running"]

log = logging.getLogger("fastcomm.server")
_running: weakref.WeakSet[Lifecycle] = weakref.WeakSet()


def running() -> list[Lifecycle]:
    """The lifecycles of this process that were started and not yet stopped."""
    return [lifecycle for lifecycle in _running if lifecycle.started and not lifecycle.stopped]


class Lifecycle:
    """The node's state as seen from ASGI: not started, running, stopped.

    A stopped node is not started again: the requests that still arrive are
    answered as by a draining node (503 on upgrades, ``/readyz`` 503).
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.started = False
        self.stopped = False

    def start(self) -> None:
        """Start the node on the running loop (once; never after :meth:`stop`)."""
        if not self.started and not self.stopped:
            self.started = True
            self.node.start()
            _running.add(self)

    async def stop(self) -> None:
        """Drain (close every connection with 1001) and close the node (once)."""
        if self.stopped:
            return
        self.stopped = True
        _running.discard(self)
        if self.started:
            await self.node.drain()
        await self.node.close()


async def run_lifespan(lifecycle: Lifecycle, receive: Receive, send: Send) -> None:
    """Serve one ASGI ``lifespan`` scope: start on startup, drain on shutdown."""
    while True:
        event = await receive()
        kind = event.get("type")
        if kind == "lifespan.startup":
            try:
                lifecycle.start()
            except Exception as exc:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            try:
                await lifecycle.stop()
            except Exception as exc:
                log.exception("shutdown failed")
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return
