"""What a contract describes, as plain data: the app layer fills a :class:`Spec`.

The built-in protocol comes from the Structs of :mod:`fastcomm.protocol`
(:func:`builtin_requests`, :func:`builtin_pushes`), so a message added there
appears in every generated document without a change here.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from fastcomm.errors import ErrorCode
from fastcomm.protocol import channel_messages, messages
from fastcomm.protocol.messages import ErrorReply, Message, Result, ServerMessage

__all__ = [
    "BUILTIN_CODES",
    "REPLIES",
    "Request",
    "Spec",
    "builtin_pushes",
    "builtin_requests",
    "result_type",
    "tag_of",
]

S = TypeVar("S", bound=msgspec.Struct)
_MODULES = (messages.__name__, channel_messages.__name__)

#: Each built-in request type -> the type of its reply (besides ``error``).
REPLIES: dict[type[Message], type[ServerMessage]] = {
    messages.Ping: messages.Pong,
    messages.Resume: messages.Resumed,
    channel_messages.Subscribe: channel_messages.Subscribed,
    channel_messages.Unsubscribe: channel_messages.Unsubscribed,
    channel_messages.Publish: channel_messages.Published,
    channel_messages.PresenceRequest: channel_messages.PresenceReply,
    channel_messages.HistoryRequest: channel_messages.HistoryReply,
}

#: The ``code`` of every built-in ``error`` reply.
BUILTIN_CODES: tuple[str, ...] = tuple(
    value for name, value in vars(ErrorCode).items() if name.isupper() and isinstance(value, str)
)


@dataclass(frozen=True)
class Request:
    """An application request type, what its handler returns, and the handler's doc."""

    type: type[msgspec.Struct]
    result: Any = Any
    description: str = ""


@dataclass(frozen=True)
class Spec:
    """Everything a contract document is made from (no App needed)."""

    title: str = "fastcomm app"
    version: str = "0.1.0"
    description: str = ""
    requests: tuple[Request, ...] = ()
    pushes: tuple[type[msgspec.Struct], ...] = ()
    error_codes: tuple[str, ...] = ()

    @property
    def codes(self) -> list[str]:
        """Built-in error codes, then the app's, without repeats."""
        return list(dict.fromkeys((*BUILTIN_CODES, *self.error_codes)))


def tag_of(msg_type: type[msgspec.Struct]) -> str:
    """The ``type`` tag of a tagged Struct class."""
    tag = getattr(msgspec.inspect.type_info(msg_type), "tag", None)
    if not isinstance(tag, str):
        raise TypeError(f"{msg_type.__name__} has no string tag")
    return tag


def _protocol_types(base: type[S]) -> list[type[S]]:
    found: list[type[S]] = []
    todo = list(base.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if cls.__module__ in _MODULES and cls not in found:
            found.append(cls)
    return found


def builtin_requests() -> list[tuple[type[Message], type[ServerMessage]]]:
    """Every request of the protocol with its reply type (``result`` when unpaired)."""
    return [(cls, REPLIES.get(cls, Result)) for cls in _protocol_types(Message)]


def builtin_pushes() -> list[type[ServerMessage]]:
    """Every server message of the protocol that is not a reply: the ones with no ``id``."""
    replies = {*REPLIES.values(), Result, ErrorReply}
    return [
        cls
        for cls in _protocol_types(ServerMessage)
        if cls not in replies and "id" not in cls.__struct_fields__
    ]


def result_type(handler: Callable[..., Any]) -> Any:
    """The return annotation of ``handler`` (``Any`` when it has none or it cannot resolve)."""
    try:
        hints = typing.get_type_hints(handler, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation documents as any value
        return Any
    return hints.get("return", Any)
