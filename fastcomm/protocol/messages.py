"""Core wire messages of protocol ``fastcomm.v1`` as msgspec tagged Structs.

Client requests derive from :class:`Message` (the public base of application
messages too); server replies and pushes derive from :class:`ServerMessage`.
The ``type`` field is the msgspec tag. Channel messages live in
:mod:`fastcomm.protocol.channel_messages`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = [
    "PROTOCOL_VERSION",
    "ErrorReply",
    "Message",
    "Ping",
    "Pong",
    "Result",
    "Resume",
    "Resumed",
    "ServerMessage",
    "Welcome",
]

PROTOCOL_VERSION = "fastcomm.v1"


RequestId = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""A request id: any 64-bit signed integer (what every encoding carries)."""


class Message(msgspec.Struct, tag_field="type", kw_only=True):
    """Base of every client request and of application message types.

    Subclass it with a ``tag`` to declare a message type::

        class Add(fastcomm.Message, tag="add"):
            a: int
            b: int

    ``id`` is the optional request id; a request that carries one gets exactly
    one reply with the same id. When absent it is ``msgspec.UNSET`` and is
    omitted from the encoded form, so pushes of application messages carry no
    ``id``.
    """

    id: RequestId | msgspec.UnsetType | None = msgspec.UNSET


class Ping(Message, tag="ping"):
    """Liveness check at the application level; answered with :class:`Pong`."""


class Resume(Message, tag="resume"):
    """Resume the detached session of ``token``; only as a connection's first message.

    The way to resume for clients that cannot set the ``Fastcomm-Resume``
    header (browsers): the token stays out of URLs. Answered with :class:`Resumed`.
    """

    token: str


class ServerMessage(msgspec.Struct, tag_field="type"):
    """Base of every message the server sends."""


class Welcome(ServerMessage, tag="welcome"):
    """First frame on every connection."""

    session: str
    resume_token: str
    resumed: bool
    heartbeat: float
    max_message_size: int
    protocol: str = PROTOCOL_VERSION


class Resumed(ServerMessage, tag="resumed"):
    """Reply to :class:`Resume` (sent even when the request had no id): the
    connection's session from now on and its resume token. With ``resumed``
    false it is the session of the ``welcome``, unchanged."""

    id: int | None
    session: str
    resume_token: str
    resumed: bool


class Pong(ServerMessage, tag="pong"):
    """Reply to :class:`Ping`."""

    id: int


class Result(ServerMessage, tag="result"):
    """Reply carrying an application handler's return value."""

    id: int
    data: Any = None


class ErrorReply(ServerMessage, tag="error"):
    """An error answer; ``id`` is null when the request carried none."""

    id: int | None
    code: str
    message: str
    details: Any = None
