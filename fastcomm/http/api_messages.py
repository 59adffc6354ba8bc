"""Request and result bodies of the HTTP server API; field names are Centrifugo's so
its client libraries work. Unknown fields are ignored (those libraries send options
fastcomm lacks). :mod:`fastcomm.http.openapi` builds the OpenAPI document from them."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from fastcomm.channels.namespaces import CHANNEL_CHARS

# fmt: off
__all__ = [
    "BroadcastRequest", "BroadcastResponse", "BroadcastResult", "Channel", "ChannelInfo",
    "ChannelRequest", "ChannelsRequest", "ChannelsResult", "ClientInfo", "Disconnect",
    "DisconnectRequest", "DisconnectResult", "Error", "ErrorReply", "HistoryPublication",
    "HistoryRequest", "HistoryResult", "InfoRequest", "InfoResult", "Position", "PresenceResult",
    "PresenceStatsResult", "PublishRequest", "PublishResult", "UnsubscribeRequest",
    "UnsubscribeResult",
]
# fmt: on

Channel = Annotated[str, Meta(min_length=1, pattern=f"^[{CHANNEL_CHARS}]+$")]
"""A channel name; its maximum length is the server's ``max_channel_length``."""


class Error(msgspec.Struct):
    code: int
    message: str


class ErrorReply(msgspec.Struct):
    error: Error


class Position(msgspec.Struct):
    offset: Annotated[int, Meta(ge=0)]
    epoch: str


class PublishRequest(msgspec.Struct):
    channel: Channel
    data: Any
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class PublishResult(msgspec.Struct):
    offset: int
    epoch: str


class BroadcastRequest(msgspec.Struct):
    channels: Annotated[list[Channel], Meta(min_length=1)]
    data: Any


class BroadcastResponse(msgspec.Struct, omit_defaults=True):
    result: PublishResult | None = None
    error: Error | None = None


class BroadcastResult(msgspec.Struct):
    responses: list[BroadcastResponse]


class ChannelRequest(msgspec.Struct):
    channel: Channel


class ClientInfo(msgspec.Struct, omit_defaults=True):
    """One present session: ``client`` is its session id, ``conn_info`` its meta."""

    client: str
    user: str
    conn_info: Any = None


class PresenceResult(msgspec.Struct):
    presence: dict[str, ClientInfo]


class PresenceStatsResult(msgspec.Struct):
    num_clients: int
    num_users: int


class HistoryRequest(msgspec.Struct):
    channel: Channel
    limit: Annotated[int, Meta(ge=-1)] | None = None
    since: Position | None = None
    reverse: bool = False


class HistoryPublication(msgspec.Struct):
    data: Any
    offset: int


class HistoryResult(msgspec.Struct):
    publications: list[HistoryPublication]
    offset: int
    epoch: str


class Disconnect(msgspec.Struct):
    code: Annotated[int, Meta(ge=1000, le=4999)] = 4003
    reason: Annotated[str, Meta(max_length=123)] = ""


class DisconnectRequest(msgspec.Struct):
    user: Annotated[str, Meta(min_length=1)] | None = None
    session: Annotated[str, Meta(min_length=1)] | None = None
    client: Annotated[str, Meta(min_length=1)] | None = None
    disconnect: Disconnect | None = None


class DisconnectResult(msgspec.Struct):
    disconnected: int


class UnsubscribeRequest(msgspec.Struct):
    user: Annotated[str, Meta(min_length=1)]
    channel: Channel


class UnsubscribeResult(msgspec.Struct):
    unsubscribed: int


class ChannelsRequest(msgspec.Struct):
    pattern: Annotated[str, Meta(max_length=1024)] | None = None


class ChannelInfo(msgspec.Struct):
    num_clients: int


class ChannelsResult(msgspec.Struct):
    channels: dict[str, ChannelInfo]


class InfoRequest(msgspec.Struct):
    pass


class InfoResult(msgspec.Struct):
    nodes: list[dict[str, Any]]
