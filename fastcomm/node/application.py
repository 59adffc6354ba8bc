"""What a node needs of the application it serves (``fastcomm.App`` provides it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from fastcomm.channels.broker import Broker
from fastcomm.channels.hooks import ChannelHooks
from fastcomm.contract.spec import Spec
from fastcomm.protocol.messages import Message
from fastcomm.sessions.identity import ConnectRequest, Identity

if TYPE_CHECKING:
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection

__all__ = ["Application"]


class Application(Protocol):
    """Handlers, hooks and an optional broker; ``node`` is set while a node serves it."""

    node: Node | None

    @property
    def handlers(self) -> Mapping[type[Message], Callable[..., Any]]: ...

    @property
    def connect_hook(self) -> Callable[[ConnectRequest], Identity | None] | None: ...

    @property
    def disconnect_hooks(self) -> Sequence[Callable[[Connection], Any]]: ...

    @property
    def channel_hooks(self) -> ChannelHooks: ...

    @property
    def broker(self) -> Broker | None: ...

    def contract(self) -> Spec: ...
