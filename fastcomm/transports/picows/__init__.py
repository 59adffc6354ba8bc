"""The picows transport (WebSocket framing in C on uvloop): fastcomm's default."""

from fastcomm.transports.picows.listener import ServerListener
from fastcomm.transports.picows.server import PicowsServer

__all__ = ["PicowsServer", "ServerListener"]
