"""The upgrade decision: HTTP endpoints, limits, origin, subprotocol, auth.

Everything that can refuse a client does it here, before the upgrade, with a
plain HTTP status: 400 (bad request, unknown subprotocols), 401/403 (the
connect hook or the origin check), 404 (unknown path), 503 (full, draining).
No exception escapes: picows would put its text in a 500 body.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from picows import WSListener, WSUpgradeRequest, WSUpgradeResponse, WSUpgradeResponseWithListener

from fastcomm.app import ConnectRequest, Identity
from fastcomm.errors import Rejected
from fastcomm.protocol.codec import JSON_SUBPROTOCOL

if TYPE_CHECKING:
    from fastcomm.server.runtime import Server as Runtime

__all__ = ["Handshake"]

log = logging.getLogger("fastcomm.server")
_ANONYMOUS = Identity()


def _error(status: int, text: str) -> WSUpgradeResponseWithListener:
    body = f"{status} {text}\n".encode()
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(status, body), None
    )


def _token(headers: Any, query: dict[str, str]) -> str | None:
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return str(value.strip())
    return query.get("token") or None


class Handshake:
    """The picows listener factory of one runtime. Call it with the request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        config = runtime.config
        self.ws_paths = {config.path, "/"} if config.echo else {config.path}
        self.origins = frozenset(config.allowed_origins)
        self.any_origin = not self.origins or "*" in self.origins
        self.codecs = runtime.codecs

    def __call__(
        self, peer_box: list[Any], request: WSUpgradeRequest
    ) -> WSListener | WSUpgradeResponseWithListener | None:
        try:
            decision: WSListener | WSUpgradeResponseWithListener | None
            decision = self._decide(peer_box[0], request)
            return decision
        except Exception:
            log.exception("handshake failed")
            self.runtime.stats.reject(500)
            return _error(500, "internal server error")

    def _decide(self, peer: Any, request: WSUpgradeRequest) -> Any:
        runtime = self.runtime
        target = request.path.decode("latin-1")
        path, _, raw_query = target.partition("?")
        if request.method != b"GET":
            return _error(405, "method not allowed")
        if path not in self.ws_paths:
            endpoint = runtime.http.get(path)
            if endpoint is None:
                return None
            return endpoint()
        headers = request.headers
        if "websocket" not in headers.get("Upgrade", "").lower():
            return _error(426, "upgrade required")
        if not runtime.accepting:
            return self._reject(503, "server is draining")
        if runtime.connection_count >= runtime.config.max_connections:
            return self._reject(503, "server is full")
        origin = headers.get("Origin")
        if origin is not None and not self.any_origin and origin not in self.origins:
            return self._reject(403, "origin not allowed")
        codec_name, extra = self._subprotocol(headers.get("Sec-WebSocket-Protocol"))
        if codec_name is None:
            return self._reject(400, "unsupported subprotocol")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        peer_addr = tuple(peer[:2]) if isinstance(peer, tuple) else None
        connect = ConnectRequest(path, query, headers, peer_addr, _token(headers, query))
        identity = _ANONYMOUS
        hook = runtime.app.connect_hook
        if hook is not None:
            try:
                identity = hook(connect) or _ANONYMOUS
            except Rejected as exc:
                return self._reject(exc.status, exc.reason)
            if not isinstance(identity, Identity):
                log.error("connect hook returned %r, not an Identity", type(identity).__name__)
                return self._reject(500, "internal server error")
        connection_tokens = [t.strip().lower() for t in headers.get("Connection", "").split(",")]
        if "upgrade" in connection_tokens:
            headers["Connection"] = "upgrade"  # picows wants exactly this; Firefox sends more
        listener = runtime.new_listener(self.codecs[codec_name], identity, connect)
        response = WSUpgradeResponse.create_101_response(extra)
        return WSUpgradeResponseWithListener(response, listener)

    def _subprotocol(self, offered: str | None) -> tuple[str | None, dict[str, str] | None]:
        if not offered:
            return JSON_SUBPROTOCOL, None
        for name in offered.split(","):
            name = name.strip()
            if name in self.codecs:
                return name, {"Sec-WebSocket-Protocol": name}
        return None, None

    def _reject(self, status: int, text: str) -> WSUpgradeResponseWithListener:
        self.runtime.stats.reject(status)
        return _error(status, text)
