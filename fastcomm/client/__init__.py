"""The fastcomm Python client (picows + msgspec).

::

    client = await Client.connect("ws://127.0.0.1:8000/ws", token="...")
    reply = await client.request(Ping())
    total = await client.call(Add(a=1, b=2))
    push = await client.receive()
    sub = await client.subscribe("chat:lobby")    # async iterator of Publications
    await client.close()

``Client`` is :class:`~fastcomm.client.reconnect.ReconnectingClient`: the
façade of :mod:`~fastcomm.client.single` with channel subscriptions
(:mod:`~fastcomm.client.channels`) and automatic reconnection with resume
(:mod:`~fastcomm.client.reconnect`) layered on top.

Modules: :mod:`~fastcomm.client.single` (one connection: :class:`SingleClient`),
:mod:`~fastcomm.client.connection` (one transport-level connection),
:mod:`~fastcomm.client.listener` (frame handling), :mod:`~fastcomm.client.codec`
(decoding server messages), :mod:`~fastcomm.client.inbox` (the push queue),
:mod:`~fastcomm.client.subscription` (one channel's publications and events),
:mod:`~fastcomm.client.channels` (routing, re-subscribing, gap fills),
:mod:`~fastcomm.client.backoff` (the reconnect policy),
:mod:`~fastcomm.client.reconnect` (the reconnect loop).
"""

from fastcomm.client.backoff import Backoff, backoff_delay
from fastcomm.client.codec import SERVER_TYPES
from fastcomm.client.connection import ClientConnection
from fastcomm.client.handshake import HandshakeFailed
from fastcomm.client.reconnect import ReconnectingClient
from fastcomm.client.single import Push
from fastcomm.client.subscription import (
    RecoveryFailed,
    Subscription,
    SubscriptionClosed,
    SubscriptionEvent,
)

#: The public client class (``fastcomm.Client``).
Client = ReconnectingClient

__all__ = [
    "SERVER_TYPES",
    "Backoff",
    "Client",
    "ClientConnection",
    "HandshakeFailed",
    "Push",
    "ReconnectingClient",
    "RecoveryFailed",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionEvent",
    "backoff_delay",
]
