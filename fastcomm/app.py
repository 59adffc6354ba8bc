"""The application object: message handlers and lifecycle hooks.

An :class:`App` is declarative: it records handlers and hooks; the server
builds its router from it once at startup. Registering after the server
started has no effect on that server. An App is also an ASGI application
(``uvicorn myapp:app``), configured from ``FASTCOMM_*`` / ``FASTCOMM_CONFIG``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from fastcomm.channels.hooks import ChannelHooks
from fastcomm.contract.spec import Request, Spec, result_type
from fastcomm.protocol.messages import Message
from fastcomm.sessions.identity import ConnectRequest, Identity

if TYPE_CHECKING:
    from fastcomm.channels.broker import Broker, StreamPosition
    from fastcomm.node.api import ServerApi
    from fastcomm.node.node import Node
    from fastcomm.protocol.channel_messages import Member
    from fastcomm.sessions.connection import Connection
    from fastcomm.transports.asgi.types import Receive, Scope, Send

__all__ = ["App", "ConnectRequest", "Handler", "Identity"]

M = TypeVar("M", bound=Message)
Handler = Callable[[Any, "Connection"], Any]
F = TypeVar("F", bound=Callable[..., Any])

_RESERVED = {
    "ping", "pong", "welcome", "result", "error", "subscribe", "unsubscribe", "publish",
    "presence", "history", "subscribed", "unsubscribed", "published", "message", "join", "leave",
    "resume", "resumed",
}  # fmt: skip


def _tag_of(msg_type: object, where: str) -> str:
    """The string ``type`` tag of a tagged Struct class; TypeError otherwise."""
    if not (isinstance(msg_type, type) and issubclass(msg_type, msgspec.Struct)):
        raise TypeError(f"{where} takes msgspec Struct classes tagged on 'type'")
    info = msgspec.inspect.type_info(msg_type)
    tag = getattr(info, "tag", None)
    if getattr(info, "tag_field", None) != "type" or not isinstance(tag, str):
        raise TypeError(f"{msg_type.__name__} needs a string tag, e.g. tag='add'")
    return tag


ConnectHook = Callable[[ConnectRequest], "Identity | None"]
DisconnectHook = Callable[["Connection"], "Awaitable[None] | None"]


class App:
    """Handlers for application message types, plus connect/disconnect hooks.

    Example::

        app = fastcomm.App()

        @app.on(Add)
        async def add(msg: Add, conn: fastcomm.Connection) -> int:
            return msg.a + msg.b
    """

    def __init__(
        self,
        *,
        title: str = "fastcomm app",
        version: str = "0.1.0",
        description: str = "",
        error_codes: Iterable[str] = (),
    ) -> None:
        """``title``, ``version`` and ``description`` head the published contract
        (``fastcomm schema``, ``/asyncapi.json``, ``/docs``); ``error_codes`` are the
        codes the handlers raise as :class:`fastcomm.WireError`, besides the built-in ones.
        """
        self.title = title
        self.version = version
        self.description = description
        self.error_codes = tuple(error_codes)
        self.pushed: list[type[msgspec.Struct]] = []
        self.handlers: dict[type[Message], Handler] = {}
        self.connect_hook: ConnectHook | None = None
        self.disconnect_hooks: list[DisconnectHook] = []
        self.channel_hooks = ChannelHooks()
        self.broker: Broker | None = None
        self.node: Node | None = None  # set by the node that serves this app

    def on(self, msg_type: type[M]) -> Callable[[F], F]:
        """Register the handler of ``msg_type``; its return value is the reply.

        The handler is ``(msg, conn) -> result``, sync or async. Raise
        :class:`fastcomm.WireError` to answer with a specific error code.
        """
        if not (isinstance(msg_type, type) and issubclass(msg_type, Message)):
            raise TypeError("app.on() takes a fastcomm.Message subclass")
        tag = _tag_of(msg_type, "app.on()")
        if tag in _RESERVED:
            raise ValueError(f"message type {tag!r} is reserved by the protocol")
        if msg_type in self.handlers:
            raise ValueError(f"a handler for {tag!r} is already registered")

        def register(func: F) -> F:
            if not callable(func):
                raise TypeError("handler must be callable")
            self.handlers[msg_type] = func
            return func

        return register

    def pushes(self, *msg_types: type[msgspec.Struct]) -> None:
        """Declare the message types the server pushes (``conn.send``, ``app.push``).

        Each is a msgspec Struct tagged on ``type`` (a :class:`fastcomm.Message` or a
        :class:`fastcomm.ServerMessage` subclass); declared pushes are documented and typed
        in the contract. Sending undeclared ones still works.
        """
        for msg_type in msg_types:
            tag = _tag_of(msg_type, "app.pushes()")
            if tag in _RESERVED:
                raise ValueError(f"message type {tag!r} is reserved by the protocol")
            if any(_tag_of(known, "") == tag for known in self.pushed):
                raise ValueError(f"a push of type {tag!r} is already declared")
            self.pushed.append(msg_type)

    def contract(self) -> Spec:
        """What the published contract describes: metadata, handlers, pushes, codes."""
        return Spec(
            title=self.title,
            version=self.version,
            description=self.description,
            requests=tuple(
                Request(msg_type, result_type(handler), inspect.getdoc(handler) or "")
                for msg_type, handler in self.handlers.items()
            ),
            pushes=tuple(self.pushed),
            error_codes=self.error_codes,
        )

    def on_connect(self, func: ConnectHook) -> ConnectHook:
        """Register the connect hook (synchronous: it runs before the upgrade).

        It returns an :class:`Identity`, or None for an anonymous connection,
        or raises :class:`fastcomm.Rejected` to answer with an HTTP status.
        """
        if inspect.iscoroutinefunction(func):
            raise TypeError("the connect hook must be synchronous (it runs in the handshake)")
        self.connect_hook = func
        return func

    def on_disconnect(self, func: DisconnectHook) -> DisconnectHook:
        """Register a hook called once after each connection closed (sync or async)."""
        self.disconnect_hooks.append(func)
        return func

    @property
    def subscribe_hook(self) -> Callable[[Connection, str], Any] | None:
        """The hook set with :meth:`authorize_subscribe` (None: every subscribe allowed)."""
        return self.channel_hooks.subscribe

    @subscribe_hook.setter
    def subscribe_hook(self, hook: Callable[[Connection, str], Any] | None) -> None:
        self.channel_hooks.subscribe = hook

    @property
    def publish_hook(self) -> Callable[[Connection, str, Any], Any] | None:
        """The hook set with :meth:`authorize_publish` (None: subscribers may publish)."""
        return self.channel_hooks.publish

    @publish_hook.setter
    def publish_hook(self, hook: Callable[[Connection, str, Any], Any] | None) -> None:
        self.channel_hooks.publish = hook

    def authorize_subscribe(
        self, func: Callable[[Connection, str], Any]
    ) -> Callable[[Connection, str], Any]:
        """Register ``(conn, channel) -> bool``; False answers ``forbidden``."""
        self.subscribe_hook = func
        return func

    def authorize_publish(
        self, func: Callable[[Connection, str, Any], Any]
    ) -> Callable[[Connection, str, Any], Any]:
        """Register ``(conn, channel, data) -> bool``; False answers ``forbidden``."""
        self.publish_hook = func
        return func

    def use_broker(self, broker: Broker) -> Broker:
        """Use ``broker`` for channels instead of the in-memory default.

        Call it before the server is created. Several servers (nodes) may share one
        broker; each takes its own handle on it, and none closes it: whoever made the
        broker closes it (``await broker.close()``) once they are all stopped.
        """
        self.broker = broker
        return broker

    # -- server-side API: valid while a node serves this app (RuntimeError otherwise) --
    @property
    def api(self) -> ServerApi:
        """The server API of the node serving this app (:class:`fastcomm.node.ServerApi`)."""
        node = self.node
        if node is None:
            raise RuntimeError("the app is not being served (start a fastcomm Server first)")
        return node.api

    async def publish(
        self, channel: str, data: Any, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        """Publish ``data`` on ``channel``; returns ``(epoch, offset)``. With an
        ``idempotency_key`` used on the channel within ``idempotency_window``, nothing
        is published again and the first publication's position is returned. Raises
        :class:`ValueError` for an invalid channel name."""
        return await self.api.publish(channel, data, idempotency_key=idempotency_key)

    async def push(self, to: str, msg: Any) -> int:
        """Send ``msg`` to a session (by id) or else to every session of a user, on
        whichever node they are; returns how many connections got it (on the nodes
        that answered within ``command_timeout``)."""
        return await self.api.push(to, msg)

    async def presence(self, channel: str) -> list[Member]:
        """Members present in ``channel``."""
        return await self.api.presence(channel)

    async def disconnect(self, session_id: str, code: int = 4003, reason: str = "") -> bool:
        """Close a live session's connection, on whichever node it is; 4003 also
        revokes it (no resume). False if no node had it live."""
        return await self.api.disconnect(session=session_id, code=code, reason=reason) > 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve this app as an ASGI application (uvicorn, granian, a FastAPI mount).

        The first call builds, once, a :class:`fastcomm.transports.asgi.AsgiApp`
        whose settings come from ``FASTCOMM_*`` variables and the
        ``FASTCOMM_CONFIG`` TOML file (the ASGI server owns the command line);
        invalid settings fail the ASGI lifespan startup, so the server does not start.
        """
        asgi: Any = self.__dict__.get("_asgi")
        if asgi is None:
            import os

            from fastcomm.config import build_config
            from fastcomm.errors import ConfigError
            from fastcomm.transports.asgi import AsgiApp

            try:
                asgi = self.__dict__["_asgi"] = AsgiApp(self, build_config({}, env=os.environ))
            except ConfigError as exc:
                if scope.get("type") != "lifespan":
                    raise
                await receive()  # lifespan.startup: refuse to start, with the reason
                await send({"type": "lifespan.startup.failed", "message": f"fastcomm: {exc}"})
                return
        await asgi(scope, receive, send)
