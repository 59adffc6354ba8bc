"""The upgrade decision, whatever the transport: limits, origin, subprotocol, auth.

Everything that can refuse a client does it here, before the upgrade, with a
plain HTTP status: 401/403 (the connect hook or the origin check), 400
(unknown subprotocols), 503 (full, draining). No exception escapes: a
failure is a 500 with no detail, logged here. Each transport maps its own
handshake onto :meth:`Admission.upgrade` and answers with what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl

from fastcomm.errors import Rejected
from fastcomm.node.origins import OriginCheck
from fastcomm.protocol.codec import JSON_SUBPROTOCOL, Codec
from fastcomm.sessions.identity import ConnectRequest, Identity

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["Accept", "Admission", "Refuse"]

log = logging.getLogger("fastcomm.server")
_ANONYMOUS = Identity()


class Accept(NamedTuple):
    """An admitted upgrade: the codec, who connects, the request the hook saw,
    and the subprotocol to answer with (None: send no header)."""

    codec: Codec
    identity: Identity
    request: ConnectRequest
    subprotocol: str | None


class Refuse(NamedTuple):
    """A refused upgrade: the HTTP status to answer with and a short reason."""

    status: int
    text: str


def _token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return str(value.strip())
    return query.get("token") or None


def _all_text(headers: Mapping[str, str]) -> bool:
    """True when every header value is valid Unicode (no bytes smuggled in as
    surrogates): identities and channel names are built from them."""
    for value in headers.values():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


class Admission:
    """Decides the upgrades of one node (checks in the order of docs/PROTOCOL.md)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        config = node.config
        self.ws_paths = frozenset({config.path, "/"} if config.echo else {config.path})
        self.origins = OriginCheck(config.allowed_origins)
        self.codecs = node.codecs

    def upgrade(
        self, path: str, raw_query: str, headers: Mapping[str, str], peer: Any
    ) -> Accept | Refuse:
        """Admit or refuse a WebSocket upgrade on a WebSocket path.

        ``headers`` must be case-insensitive; ``peer`` is the transport's
        peer address (anything not a tuple counts as unknown).
        """
        try:
            return self._decide(path, raw_query, headers, peer)
        except Exception:
            log.exception("handshake failed")
            return self._reject(500, "internal server error")

    def _decide(
        self, path: str, raw_query: str, headers: Mapping[str, str], peer: Any
    ) -> Accept | Refuse:
        node = self.node
        if not _all_text(headers):
            return self._reject(400, "request headers are not valid UTF-8")
        try:
            query = dict(parse_qsl(raw_query, keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            return self._reject(400, "query string is not valid UTF-8")
        if not node.accepting:
            return self._reject(503, "server is draining")
        if len(node.connections) >= node.max_connections:
            return self._reject(503, "server is full")
        refused = self.origins.refusal(headers)
        if refused is not None:
            return self._reject(403, refused)
        codec_name, subprotocol = self._subprotocol(headers.get("Sec-WebSocket-Protocol"))
        if codec_name is None:
            return self._reject(400, "unsupported subprotocol")
        peer_addr = tuple(peer[:2]) if isinstance(peer, tuple) else None
        connect = ConnectRequest(path, query, headers, peer_addr, _token(headers, query))
        identity = _ANONYMOUS
        hook = node.app.connect_hook
        if hook is not None:
            try:
                identity = hook(connect) or _ANONYMOUS
            except Rejected as exc:
                return self._reject(exc.status, exc.reason)
            if not isinstance(identity, Identity):
                log.error("connect hook returned %r, not an Identity", type(identity).__name__)
                return self._reject(500, "internal server error")
        return Accept(self.codecs[codec_name], identity, connect, subprotocol)

    def _subprotocol(self, offered: str | None) -> tuple[str | None, str | None]:
        if not offered:
            return JSON_SUBPROTOCOL, None
        for name in offered.split(","):
            name = name.strip()
            if name in self.codecs:
                return name, name
        return None, None

    def _reject(self, status: int, text: str) -> Refuse:
        self.node.stats.reject(status)
        return Refuse(status, text)
