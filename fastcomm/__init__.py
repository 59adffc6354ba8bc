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

from fastcomm.app import App
from fastcomm.client import Client
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
    WireError,
)
from fastcomm.protocol.messages import Message, ServerMessage
from fastcomm.server import Server, serve
from fastcomm.sessions import Connection, ConnectRequest, Identity

__version__ = "0.1.0"

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
    "WireError",
    "__version__",
    "build_config",
    "serve",
]
