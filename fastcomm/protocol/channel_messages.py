"""Channel messages of protocol ``fastcomm.v1``: pub/sub, presence, history."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from fastcomm.protocol.messages import Message, ServerMessage

__all__ = [
    "HistoryReply",
    "HistoryRequest",
    "Join",
    "Leave",
    "Member",
    "PresenceReply",
    "PresenceRequest",
    "Publication",
    "Publish",
    "Published",
    "Recover",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
]


Offset = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
"""A publish's idempotency key: a retry with the same key publishes nothing more."""
"""An offset or count in a request: 0 to 2**63-1 (what every backend can store)."""


class Recover(msgspec.Struct, forbid_unknown_fields=True):
    """Position to recover a channel from: the last offset seen in ``epoch``."""

    offset: Offset
    epoch: str


class Subscribe(Message, tag="subscribe"):
    channel: str
    recover: Recover | None = None


class Unsubscribe(Message, tag="unsubscribe"):
    channel: str


class Publish(Message, tag="publish"):
    channel: str
    data: Any = None
    idempotency_key: IdempotencyKey | None = None


class PresenceRequest(Message, tag="presence"):
    channel: str


class HistoryRequest(Message, tag="history"):
    channel: str
    since: Offset | None = None
    limit: Offset | None = None


class Subscribed(ServerMessage, tag="subscribed"):
    id: int | None
    channel: str
    offset: int
    epoch: str
    recovered: bool = False


class Unsubscribed(ServerMessage, tag="unsubscribed"):
    id: int | None
    channel: str


class Published(ServerMessage, tag="published"):
    id: int
    channel: str
    offset: int


class Member(msgspec.Struct):
    """One presence entry."""

    session: str
    user: str | None
    meta: Any = None


class PresenceReply(ServerMessage, tag="presence"):
    id: int
    channel: str
    members: list[Member]


class Publication(ServerMessage, tag="message"):
    """A publication pushed to subscribers."""

    channel: str
    offset: int
    epoch: str
    data: Any = None


class HistoryReply(ServerMessage, tag="history"):
    id: int
    channel: str
    epoch: str
    messages: list[Publication]


class Join(ServerMessage, tag="join"):
    channel: str
    session: str
    user: str | None


class Leave(ServerMessage, tag="leave"):
    channel: str
    session: str
    user: str | None
