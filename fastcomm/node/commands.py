"""Commands between the nodes of one server: what they say over the broker.

A node asks every node (itself included) to apply a command to its local
matches and answer with a count; the answers are summed (or merged) by the
node that asked. Commands travel as MessagePack over
:meth:`~fastcomm.channels.broker.BrokerHandle.send`.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "Answer",
    "Ask",
    "ChannelCounts",
    "Command",
    "Describe",
    "Disconnect",
    "NodeInfo",
    "Push",
    "Snapshot",
    "Takeover",
    "Unsubscribe",
    "decode",
    "encode",
]


class Push(msgspec.Struct, tag="push", array_like=True):
    """Send ``msg`` (builtins) to the session ``to`` or else to the user ``to``."""

    to: str
    msg: Any


class Disconnect(msgspec.Struct, tag="disconnect", array_like=True):
    """Close the session ``session`` (or every session of ``user``; both: that
    session if it is ``user``'s) with ``code``; 4003 also revokes it."""

    user: str | None
    session: str | None
    code: int
    reason: str


class Unsubscribe(msgspec.Struct, tag="unsubscribe", array_like=True):
    """Unsubscribe every live session of ``user`` from ``channel``."""

    user: str
    channel: str


class ChannelCounts(msgspec.Struct, tag="channels", array_like=True):
    """Subscriber counts of the channels matching ``pattern`` (None: all)."""

    pattern: str | None


class Describe(msgspec.Struct, tag="info", array_like=True):
    """This node's :class:`NodeInfo`."""


class Snapshot(msgspec.Struct, tag="snapshot", array_like=True):
    """This node's status document if it is a worker of the server ``server``
    (the ``server_id`` of one supervisor's workers), else None."""

    server: str


class Takeover(msgspec.Struct, tag="takeover", array_like=True):
    """The session ``session`` was resumed on another node: close it here."""

    session: str


Command = Push | Disconnect | Unsubscribe | ChannelCounts | Describe | Snapshot
"""What a node may be asked; each answer is a count (ChannelCounts: a dict,
Describe: a :class:`NodeInfo` as a dict, Snapshot: a dict or None)."""


class Ask(msgspec.Struct, tag="ask", array_like=True):
    """Apply ``command`` and answer request ``id`` to the node ``origin``."""

    id: int
    origin: str
    command: Command


class Answer(msgspec.Struct, tag="answer", array_like=True):
    """The answer of node ``node`` to request ``id``."""

    id: int
    node: str
    value: Any


class NodeInfo(msgspec.Struct, kw_only=True):
    """What a node announces in the node registry (its heartbeat)."""

    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    num_subs: int
    uptime: int


Message = Ask | Answer | Takeover

_encode = msgspec.msgpack.Encoder().encode
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message | NodeInfo) -> bytes:
    return _encode(message)


def decode(data: bytes) -> Message:
    """Raises msgspec.DecodeError (or ValidationError) for a message of another kind."""
    return _decoder.decode(data)
