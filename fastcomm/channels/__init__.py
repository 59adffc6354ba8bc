"""Channels: pub/sub with offsets and epochs, history, presence, recovery.

:mod:`~fastcomm.channels.broker` defines the :class:`Broker` interface and
:mod:`~fastcomm.channels.memory` the embedded in-memory backend;
:mod:`~fastcomm.channels.hub` fans publications out to this node's
connections; :mod:`~fastcomm.channels.handlers` holds the routes,
:mod:`~fastcomm.channels.recovery` the catch-up and resume logic and
:mod:`~fastcomm.channels.namespaces` the per-channel options. The
server-side API behind ``app.publish`` is the node's
(:mod:`fastcomm.node.api`).
"""

from fastcomm.channels.broker import Broker, HistoryPage, StreamPosition
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.namespaces import ChannelOptions

__all__ = ["Broker", "ChannelOptions", "HistoryPage", "MemoryBroker", "StreamPosition"]
