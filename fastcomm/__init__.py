"""fastcomm: a fast, correct real-time WebSocket server for Python.

The public API::

    app = fastcomm.App()

    class Add(fastcomm.Message, tag="add"):
        a: int
        b: int

    @app.on(Add)
    def add(msg: Add, conn: fastcomm.Connection) -> int:
        return msg.a + msg.b
"""

from typing import TYPE_CHECKING, Any

from fastcomm.app import App
from fastcomm.config import Config, build_config
from fastcomm.errors import (
    AppLoadError,
    ClientError,
    CloseCode,
    ConfigError,
    ConnectionClosed,
    ErrorCode,
    FastcommError,
    HandshakeFailed,
    ProtocolViolation,
    Rejected,
    RequestFailed,
    StartupError,
    WireError,
)
from fastcomm.protocol.messages import Message, ServerMessage
from fastcomm.sessions import Connection, ConnectRequest, Identity

if TYPE_CHECKING:
    from fastcomm.client import Client
    from fastcomm.server import Server, serve

from fastcomm.version import __version__

__all__ = [
    "App",
    "AppLoadError",
    "Client",
    "ClientError",
    "CloseCode",
    "Config",
    "ConfigError",
    "ConnectRequest",
    "Connection",
    "ConnectionClosed",
    "ErrorCode",
    "FastcommError",
    "HandshakeFailed",
    "Identity",
    "Message",
    "ProtocolViolation",
    "Rejected",
    "RequestFailed",
    "Server",
    "ServerMessage",
    "StartupError",
    "WireError",
    "__version__",
    "build_config",
    "serve",
]

# The client and the server pull in picows and uvloop; they are imported on first
# use, so that the core (``fastcomm.protocol``, ``fastcomm.node``...) imports without them.
_LAZY = {"Client": "fastcomm.client", "Server": "fastcomm.server", "serve": "fastcomm.server"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastcomm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
