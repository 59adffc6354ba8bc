"""A picows server that plays a fastcomm server's part as a test scripts it.

For what a fastcomm server never does on purpose: answer with the wrong
message, close before ``welcome``, never answer a CLOSE, hold a ``history``
reply until the client has moved on. Each accepted connection is a
:class:`Peer`; the test reacts to the client's requests (JSON only) in
``on_request`` and drives the rest through the peers it collects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from fastcomm.protocol.messages import Welcome

__all__ = ["WELCOME", "FakeServer", "Peer"]

WELCOME = Welcome("s1", "t1", False, 25.0, 1 << 20)


class Peer(WSListener):
    """The server side of one client connection."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.transport: WSTransport | None = None
        self.requests: list[dict[str, Any]] = []
        self.closes: list[bytes] = []  # payloads of the CLOSE frames the client sent
        self.gone = asyncio.Event()

    # -- sending ------------------------------------------------------------------
    def send(self, msg: Any) -> None:
        self.frame(WSMsgType.TEXT, msgspec.json.encode(msg))

    def frame(self, msg_type: WSMsgType, payload: bytes, fin: bool = True) -> None:
        assert self.transport is not None
        self.transport.send(msg_type, payload, fin)

    def close(self, payload: bytes) -> None:
        """Send CLOSE with ``payload`` (the client answers it; see ``on_ws_frame``)."""
        self.frame(WSMsgType.CLOSE, payload)

    # -- picows callbacks ---------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server.peers.append(self)
        self.server.on_connect(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        payload = frame.get_payload_as_bytes()
        if frame.msg_type is WSMsgType.CLOSE:
            self.closes.append(payload)
            if self.server.echo_close:
                transport.send(WSMsgType.CLOSE, payload)
                transport.disconnect()
            return
        request = msgspec.json.decode(payload)
        self.requests.append(request)
        self.server.on_request(self, request)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.gone.set()


def _welcome(peer: Peer) -> None:
    peer.send(WELCOME)


def _ignore(peer: Peer, request: dict[str, Any]) -> None:
    pass


class FakeServer:
    """``async with FakeServer(...) as server``: listening on a free port (``url``).

    ``on_connect(peer)`` runs once the upgrade completed (the default sends
    :data:`WELCOME`); ``on_request(peer, request)`` for each data message;
    ``echo_close=False`` leaves the client's CLOSE unanswered;
    ``subprotocol=False`` never answers the subprotocol offered. While
    ``refuse`` is an HTTP status, upgrades are refused with it (``refusals``
    counts them).
    """

    def __init__(
        self,
        on_connect: Callable[[Peer], None] = _welcome,
        on_request: Callable[[Peer, dict[str, Any]], None] = _ignore,
        *,
        echo_close: bool = True,
        subprotocol: bool = True,
    ) -> None:
        self.on_connect = on_connect
        self.on_request = on_request
        self.echo_close = echo_close
        self.subprotocol = subprotocol
        self.refuse: int | None = None
        self.refusals = 0
        self.peers: list[Peer] = []
        self._server: asyncio.Server | None = None

    @property
    def close_codes(self) -> list[int]:
        """The status codes of the CLOSE frames clients sent, in order of the peers."""
        return [int.from_bytes(p[:2], "big") for peer in self.peers for p in peer.closes]

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws"

    def _factory(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        if self.refuse is not None:
            self.refusals += 1
            response = WSUpgradeResponse.create_error_response(self.refuse, b"refused")
            return WSUpgradeResponseWithListener(response, None)
        offered = request.headers.get("Sec-WebSocket-Protocol")
        response = WSUpgradeResponse.create_101_response(
            {"Sec-WebSocket-Protocol": offered} if offered and self.subprotocol else None
        )
        return WSUpgradeResponseWithListener(response, Peer(self))

    async def __aenter__(self) -> FakeServer:
        self._server = await ws_create_server(self._factory, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for peer in self.peers:
            if peer.transport is not None:
                peer.transport.disconnect(False)
