"""The picows transport: a listening socket whose handshakes the node decides.

picows asks for a listener inside its handshake callback; :class:`PicowsServer`
answers from :meth:`Admission.upgrade` (a listener for a 101, or an HTTP
refusal) and serves the node's plain HTTP endpoints on the same port. No
exception escapes the callback: picows would put its text in a 500 body.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from picows import (
    WSAutoPingStrategy,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

from fastcomm.http.endpoints import Endpoints, refusal
from fastcomm.http.types import Request, Response
from fastcomm.node.admission import Refuse
from fastcomm.transports.picows.handshakes import (
    HandshakeGate,
    Pending,
    PicowsLog,
    ServerProtocol,
    decided,
)
from fastcomm.transports.picows.listener import ServerListener

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["PicowsServer"]

log = logging.getLogger("fastcomm.server")


def _answer(response: Response) -> WSUpgradeResponseWithListener:
    headers = [("Content-Type", response.content_type), *response.headers]
    if response.status == 200:
        reply = WSUpgradeResponse.create_ok_response(response.body, headers)
    else:
        reply = WSUpgradeResponse.create_error_response(response.status, response.body, headers)
    return WSUpgradeResponseWithListener(reply, None)


class PicowsServer:
    """Serves ``node`` over picows on ``host:port`` (port 0: any free port)."""

    def __init__(self, node: Node, endpoints: Endpoints | None = None) -> None:
        self.node = node
        self.endpoints = endpoints if endpoints is not None else Endpoints(node)
        self.port = 0
        self._server: asyncio.Server | None = None
        self.gate = HandshakeGate(node.config.max_pending_handshakes, node.stats)
        self.log = PicowsLog(logging.getLogger("picows.server"))

    async def start(self, host: str, port: int, **options: Any) -> None:
        """Bind and listen; ``self.port`` is the bound port afterwards.

        ``options`` go to ``loop.create_server`` (``ssl``, ``reuse_port``...).
        """
        config = self.node.config
        loop = asyncio.get_running_loop()
        picows_log, gate = self.log, self.gate

        def protocol() -> ServerProtocol:
            pending = Pending()
            proto = ServerProtocol(
                None, None, False, partial(self.handshake, pending), picows_log, True,
                config.handshake_timeout, False, 20.0, 20.0, WSAutoPingStrategy.PING_WHEN_IDLE,
                False, config.max_message_size, None, config.read_buffer_size,
            )  # fmt: skip
            proto.pending = pending
            proto.gate = gate
            return proto

        options.setdefault("backlog", 4096)
        options.setdefault("reuse_address", True)
        self._server = await loop.create_server(protocol, host, port, **options)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop_listening(self) -> None:
        """Close the listening socket (open connections stay)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def handshake(
        self, pending: Pending, request: WSUpgradeRequest
    ) -> ServerListener | WSUpgradeResponseWithListener | None:
        """picows' listener factory: a listener, an HTTP answer, never an exception."""
        decided(pending, self.gate)
        try:
            decision: ServerListener | WSUpgradeResponseWithListener = self._decide(
                pending.peer, request
            )
            return decision
        except Exception:
            log.exception("handshake failed")
            self.node.stats.reject(500)
            return _answer(refusal(Refuse(500, "internal server error")))

    def _decide(self, peer: Any, request: WSUpgradeRequest) -> Any:
        node = self.node
        target = request.path.decode("latin-1")
        path, _, query = target.partition("?")
        headers = request.headers
        if request.method != b"GET":
            return _answer(Response(405, b"405 method not allowed\n"))
        if path not in node.admission.ws_paths:
            return _answer(self.endpoints(Request("GET", path, query, headers)))
        if "websocket" not in headers.get("Upgrade", "").lower():
            return _answer(Response(426, b"426 upgrade required\n"))
        if headers.get("Sec-WebSocket-Version") != "13" or not headers.get("Sec-WebSocket-Key"):
            # picows would answer this 400 itself, uncounted.
            node.stats.reject(400)
            return _answer(Response(400, b"400 bad WebSocket handshake\n"))
        decision = node.admission.upgrade(path, query, headers, peer)
        if isinstance(decision, Refuse):
            return _answer(refusal(decision))
        connection_tokens = [t.strip().lower() for t in headers.get("Connection", "").split(",")]
        if "upgrade" in connection_tokens:
            headers["Connection"] = "upgrade"  # picows wants exactly this; Firefox sends more
        extra = None
        if decision.subprotocol is not None:
            extra = {"Sec-WebSocket-Protocol": decision.subprotocol}
        listener = ServerListener(node, decision)
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(extra), listener)
