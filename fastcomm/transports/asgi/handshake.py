"""The WebSocket handshake on ASGI: a ``websocket`` scope mapped onto admission.

The scope's headers, query string and client address go to
:meth:`Admission.upgrade`. A refusal is answered with its HTTP status before
the upgrade through the ``websocket.http.response`` extension when the
server advertises it (uvicorn and granian do); otherwise the only way an
ASGI app can refuse is ``websocket.close`` before ``websocket.accept``,
which both servers turn into ``403`` with an empty body, whatever the
status was. An admitted upgrade is accepted with the chosen subprotocol.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from fastcomm.http.endpoints import refusal
from fastcomm.http.types import Response
from fastcomm.node.admission import Refuse
from fastcomm.transports.asgi.connection import AsgiTransport
from fastcomm.transports.asgi.types import Receive, Scope, Send

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["DENIAL_EXTENSION", "peer_of", "scope_headers", "serve_websocket"]

DENIAL_EXTENSION = "websocket.http.response"
log = logging.getLogger("fastcomm.server")


def scope_headers(scope: Scope) -> CIMultiDict[str]:
    """The request headers of ``scope``, case-insensitive, decoded as latin-1."""
    return CIMultiDict(
        (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        for name, value in scope.get("headers") or ()
    )


def peer_of(scope: Scope) -> tuple[str, int] | None:
    """``scope["client"]`` as ``(host, port)`` (granian gives the port as a string)."""
    client: Any = scope.get("client")
    if not client or len(client) < 2:
        return None
    try:
        return str(client[0]), int(client[1])
    except (TypeError, ValueError):
        return None


async def deny(scope: Scope, send: Send, response: Response) -> None:
    """Refuse the upgrade with ``response`` (a 403 when the server cannot say more)."""
    if DENIAL_EXTENSION in (scope.get("extensions") or {}):
        headers = [(b"content-type", response.content_type.encode("latin-1"))]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status,
                "headers": headers,
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": ""})


async def serve_websocket(
    node: Node, path: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run one ``websocket`` scope: the handshake, then the connection until it ends."""
    event = await receive()
    if event.get("type") != "websocket.connect":
        return  # the client left before the handshake
    if path not in node.admission.ws_paths:
        await deny(scope, send, Response(404, b"404 not found\n"))
        return
    headers = scope_headers(scope)
    offered = scope.get("subprotocols")
    if offered:  # one value, even when the client split it over several headers
        headers["Sec-WebSocket-Protocol"] = ", ".join(str(name) for name in offered)
    peer = peer_of(scope)
    raw_query = bytes(scope.get("query_string") or b"").decode("latin-1")
    decision = node.admission.upgrade(path, raw_query, headers, peer)
    if isinstance(decision, Refuse):
        await deny(scope, send, refusal(decision))
        return
    try:
        await send({"type": "websocket.accept", "subprotocol": decision.subprotocol})
    except Exception:
        log.debug("accept failed", exc_info=True)  # gone before the 101 was written
        return
    await AsgiTransport(node, send, peer).run(decision, receive)
