"""Plain HTTP on ASGI: the node's endpoints (``/healthz``, ``/status``...) below the mount.

The request body is read up to :data:`MAX_BODY` bytes (413 above it), then
the request goes to :class:`~fastcomm.http.endpoints.Endpoints` as data;
with an API key configured, ``/api/...`` goes to the HTTP server API
(:class:`~fastcomm.http.api.HttpApi`, its own body limit). A
plain GET on the WebSocket path is a 426, as on the picows transport, and
another method there a 405.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastcomm.http.types import Request, Response
from fastcomm.transports.asgi.handshake import scope_headers
from fastcomm.transports.asgi.types import Receive, Scope, Send

if TYPE_CHECKING:
    from fastcomm.http.api import HttpApi
    from fastcomm.http.endpoints import Endpoints

__all__ = ["MAX_BODY", "read_body", "serve_http"]

MAX_BODY = 64 * 1024
"""Bytes of request body an endpoint request may carry."""

_TOO_LARGE = Response(413, b"413 request body too large\n")
_UPGRADE = Response(426, b"426 upgrade required\n", headers=(("Upgrade", "websocket"),))
_NOT_ALLOWED = Response(405, b"405 method not allowed\n", headers=(("Allow", "GET"),))


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes | None:
    """The whole request body; None once it passes ``limit`` bytes.

    Raises :class:`EOFError` when the client leaves before the body ends.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event.get("type") != "http.request":
            raise EOFError("client disconnected")
        chunk = bytes(event.get("body") or b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


async def serve_http(
    endpoints: Endpoints,
    path: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    api: HttpApi | None = None,
) -> None:
    """Answer one ``http`` scope from ``endpoints``, or from ``api`` below ``/api/``."""
    to_api = api is not None and path.startswith("/api/")
    try:
        body = await read_body(receive, api.max_body if api is not None and to_api else MAX_BODY)
    except EOFError:
        return
    method = str(scope.get("method") or "GET")
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    if api is not None and to_api:
        if body is None:
            response = api.too_large
        else:
            response = await api.handle(Request(method, path, query, scope_headers(scope), body))
    elif body is None:
        response = _TOO_LARGE
    elif path in endpoints.node.admission.ws_paths:
        response = _UPGRADE if method in ("GET", "HEAD") else _NOT_ALLOWED
    else:
        response = endpoints(Request(method, path, query, scope_headers(scope), body))
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})
