"""Opening the WebSocket: the HTTP upgrade with picows and what can refuse it.

:func:`dial` performs the upgrade and checks the negotiated subprotocol
before any frame is handled; :class:`HandshakeFailed` carries the HTTP
status of a refusal (401, 403, 503, ...) so callers such as a reconnect loop
can tell "do not retry" from "retry later".
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Callable, Mapping

from picows import WSHandshakeError, WSListener, WSUpgradeRequest, WSUpgradeResponse, ws_connect

from fastcomm.errors import HandshakeFailed
from fastcomm.protocol.codec import JSON_SUBPROTOCOL

__all__ = ["HandshakeFailed", "dial"]


def _refused(exc: WSHandshakeError) -> HandshakeFailed:
    response = exc.response
    if response is None:
        return HandshakeFailed(None, exc.raw_body or b"", str(exc))
    return HandshakeFailed(int(response.status), response.body or exc.raw_body or b"")


async def dial(
    url: str,
    subprotocol: str,
    make_listener: Callable[[], WSListener],
    *,
    headers: Mapping[str, str] | None,
    timeout: float,
    max_frame_size: int,
    ssl: _ssl.SSLContext | None = None,
) -> None:
    """Upgrade ``url`` to a WebSocket offering only ``subprotocol``.

    ``make_listener`` is called once the server accepted ``subprotocol`` (no
    ``Sec-WebSocket-Protocol`` in the answer means ``fastcomm.v1.json``).
    Raises :class:`HandshakeFailed` on a refusal or another subprotocol,
    ``OSError`` when the server is unreachable or closes the connection before
    answering. ``ssl`` verifies a ``wss://`` server (None: the system's default
    trust store).
    """

    def factory(request: WSUpgradeRequest, response: WSUpgradeResponse) -> WSListener:
        chosen = response.headers.get("Sec-WebSocket-Protocol") or JSON_SUBPROTOCOL
        if chosen != subprotocol:
            raise HandshakeFailed(101, reason=f"server chose subprotocol {chosen!r}")
        return make_listener()

    try:
        _transport, listener = await ws_connect(
            factory,
            url,
            websocket_handshake_timeout=timeout,
            max_frame_size=max_frame_size,
            ssl_context=ssl,
            extra_headers={**(headers or {}), "Sec-WebSocket-Protocol": subprotocol},
        )
    except WSHandshakeError as exc:
        raise _refused(exc) from None
    if listener is None:  # picows returns without one if the connection closed first
        raise ConnectionResetError("the server closed the connection during the upgrade")
