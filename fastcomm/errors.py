"""The one exception tree of fastcomm, and the wire-level error codes.

::

    FastcommError                 base of everything fastcomm raises
    ├── ConfigError               a bad configuration value (CLI exits 2)
    ├── AppLoadError              ``module:attr`` could not be imported
    ├── StartupError              the server could not start (port in use, unknown host)
    ├── ProtocolViolation         the peer broke RFC 6455; carries the close code
    ├── WireError                 a request failed; sent as ``{"type":"error"}``
    ├── Rejected                  the connect hook refused the upgrade (HTTP status)
    └── ClientError               raised by :class:`fastcomm.Client`
        ├── HandshakeFailed       the server refused the upgrade; carries the HTTP status
        ├── ConnectionClosed      the connection is gone; carries the close code
        └── RequestFailed         the server answered a request with ``error``

Local errors (caller misuse) and remote errors (the peer broke the protocol)
are different classes; wire errors are data with stable codes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppLoadError",
    "ClientError",
    "CloseCode",
    "ConfigError",
    "ConnectionClosed",
    "ErrorCode",
    "FastcommError",
    "HandshakeFailed",
    "ProtocolViolation",
    "Rejected",
    "RequestFailed",
    "StartupError",
    "WireError",
]


class ErrorCode:
    """Stable ``code`` strings of ``error`` replies (see docs/PROTOCOL.md)."""

    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    FORBIDDEN = "forbidden"
    NOT_SUBSCRIBED = "not_subscribed"
    RATE_LIMITED = "rate_limited"
    LIMIT_EXCEEDED = "limit_exceeded"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    ALREADY_SUBSCRIBED = "already_subscribed"


class CloseCode:
    """WebSocket close codes fastcomm sends (see docs/PROTOCOL.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_TEXT = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SESSION_REVOKED = 4003
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


class FastcommError(Exception):
    """Base class of every exception fastcomm raises."""


class ConfigError(FastcommError):
    """A configuration value is invalid; the message names the setting."""


class AppLoadError(FastcommError):
    """The application given as ``module:attr`` or ``file.py:attr`` failed to load."""


class StartupError(FastcommError):
    """The server could not start: a port in use, an unknown host... (CLI exits 2)."""


class ProtocolViolation(FastcommError):
    """The peer broke the WebSocket protocol; close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class WireError(FastcommError):
    """A request failed. Raise it from a handler to send this exact error reply.

    ``message`` is shown to the client, so it must hold no internal detail.
    """

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class Rejected(FastcommError):
    """Raised by a connect hook to refuse the upgrade with an HTTP status.

    Use 401 for missing or invalid credentials, 403 for a forbidden client,
    503 when the service cannot take the connection now.
    """

    def __init__(self, status: int = 401, reason: str = "unauthorized") -> None:
        if not 400 <= status <= 599:
            raise ValueError("Rejected status must be a 4xx or 5xx HTTP status")
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class ClientError(FastcommError):
    """Base class of errors raised by :class:`fastcomm.Client`."""


class ConnectionClosed(ClientError):
    """The connection closed; ``code`` is the close code received (1006 if none)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class HandshakeFailed(ClientError):
    """The server refused the WebSocket upgrade.

    ``status`` is the HTTP status (401, 403, 503, ...; 101 when the upgrade
    succeeded but without the requested subprotocol; None when the response
    was malformed), ``body`` the response body and ``reason`` its text without
    the status that fastcomm servers repeat in it (``401 token expired`` ->
    ``token expired``), so the message names the status once.
    """

    def __init__(self, status: int | None, body: bytes = b"", reason: str = "") -> None:
        text = " ".join((reason or body.decode("utf-8", "replace")).split())
        if status is not None:
            text = text.removeprefix(f"{status} ") if text != str(status) else ""
        super().__init__(f"WebSocket upgrade refused: {status} {text}".rstrip())
        self.status = status
        self.body = body
        self.reason = text


class RequestFailed(ClientError):
    """The server replied to a request with an ``error`` message."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        # A message that only repeats the code ("forbidden") is said once.
        super().__init__(code if message in ("", code) else f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
