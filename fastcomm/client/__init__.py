"""The fastcomm Python client (picows + msgspec).

::

    client = await Client.connect("ws://127.0.0.1:8000/ws", token="...")
    reply = await client.request(Ping())
    total = await client.call(Add(a=1, b=2))
    push = await client.receive()
    await client.close()

Modules: :mod:`~fastcomm.client.client` (the public façade),
:mod:`~fastcomm.client.connection` (one transport-level connection),
:mod:`~fastcomm.client.listener` (frame handling), :mod:`~fastcomm.client.codec`
(decoding server messages), :mod:`~fastcomm.client.inbox` (the push queue).
"""

from fastcomm.client.client import Client, Push
from fastcomm.client.codec import SERVER_TYPES
from fastcomm.client.connection import ClientConnection
from fastcomm.client.handshake import HandshakeFailed

__all__ = ["SERVER_TYPES", "Client", "ClientConnection", "HandshakeFailed", "Push"]
