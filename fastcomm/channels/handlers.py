"""Channel support of a node: the routes of the channel requests and their checks.

:class:`Channels` is given what it uses (the node's broker handle, the
application's channel hooks, a task spawner and the error replier); it
holds the hub and the :class:`~fastcomm.channels.subscriptions.Subscriptions`,
offers the routes for ``subscribe``, ``unsubscribe``, ``publish``,
``presence`` and ``history`` (:meth:`Channels.routes`), and the callbacks
for a connection's attach (resume) and detach. Each route validates synchronously,
answering errors at once; work that needs the broker or an async
authorization hook runs as one tracked task (``router.spawn``).

Checks, in order: channel name (``invalid_message``), then for ``subscribe``
a duplicate (``already_subscribed``) and the per-connection limit
(``limit_exceeded``), the subscribe hook (``forbidden``); for ``publish`` the
namespace's ``client_publish`` (``forbidden``), then the publish hook
(``forbidden``) or, when the app set none, a subscription to the channel
(``not_subscribed``). ``presence`` and ``history`` need a subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastcomm.channels import presence
from fastcomm.channels.broker import Broker, Control
from fastcomm.channels.hooks import (
    PUBLISH_REFUSED,
    SUBSCRIBE_REFUSED,
    ChannelHooks,
    Verdict,
    ask,
    granted,
)
from fastcomm.channels.hub import Hub, Joiner, Spawn
from fastcomm.channels.namespaces import ChannelOptions, Namespaces, channel_problem
from fastcomm.channels.subscriptions import Fail, Subscriptions
from fastcomm.config import Config
from fastcomm.errors import ErrorCode, WireError
from fastcomm.protocol.channel_messages import (
    HistoryReply,
    HistoryRequest,
    PresenceReply,
    PresenceRequest,
    Publish,
    Published,
    Subscribe,
    Unsubscribe,
)
from fastcomm.protocol.messages import Message
from fastcomm.protocol.payload import payload_problem

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["ALREADY_SUBSCRIBED", "Channels"]

log = logging.getLogger("fastcomm.channels")

ALREADY_SUBSCRIBED = ErrorCode.ALREADY_SUBSCRIBED
"""Error code of a ``subscribe`` to a channel the connection is already in."""

Route = Callable[[Any, "Connection"], None]


def _rid(msg: Message) -> int | None:
    rid = msg.id
    return rid if type(rid) is int else None


def _unavailable(exc: Exception) -> WireError:
    log.warning("channel backend failed: %r", exc, exc_info=exc)
    return WireError(ErrorCode.UNAVAILABLE, "channel backend unavailable")


class Channels:
    """Channel features of one server (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        broker: Broker,
        hooks: ChannelHooks,
        spawn: Spawn,
        fail: Fail,
        *,
        uid: str = "",
        control: Control | None = None,
        changed: Callable[[Connection], None] | None = None,
    ) -> None:
        self.namespaces = Namespaces(config)
        self.hooks = hooks
        self.spawn = spawn
        self.fail = fail
        self.hub = Hub(broker, spawn, uid=uid, control=control)
        self.broker = self.hub.broker  # this node's handle
        self.presence_ttl = config.presence_ttl
        self.subscriptions = Subscriptions(
            self.hub, self.broker, self.namespaces, hooks, spawn, fail, self.presence_ttl
        )
        if changed is not None:
            self.subscriptions.changed = changed
        self.max_subscriptions = config.max_subscriptions
        self.max_channels = config.max_channels
        self.max_channel_length = config.max_channel_length
        self.history_bytes = config.history_max_bytes
        self.attached = self.subscriptions.attached
        self.detached = self.subscriptions.detached
        self.drop = self.subscriptions.drop
        self.positions = self.subscriptions.positions

    def _members(self) -> list[tuple[str, Connection]]:
        return [
            (name, conn)
            for name, state in self.hub.channels.items()
            for conns in state.groups.values()
            for conn in conns
        ]

    async def restore_presence(self) -> None:
        """Add this node's live members again (the broker came back: maybe empty)."""
        await presence.restore(self.broker, self.namespaces, self._members(), self.presence_ttl)

    async def keep_presence(self) -> None:
        """Keep this node's live members listed (the node's sweep calls it)."""
        live = [(name, conn.session_id) for name, conn in self._members()]
        await presence.keep(self.broker, live, self.presence_ttl)

    def routes(self) -> dict[type[Message], Route]:
        """The built-in channel requests and their routes."""
        return {
            Subscribe: self.subscribe,
            Unsubscribe: self.subscriptions.unsubscribe,
            Publish: self.publish,
            PresenceRequest: self.presence,
            HistoryRequest: self.history,
        }

    def _invalid(self, conn: Connection, rid: int | None, channel: str) -> bool:
        problem = channel_problem(channel, self.max_channel_length)
        if problem is not None:
            conn.send_error(rid, ErrorCode.INVALID_MESSAGE, problem, {"path": "$.channel"})
        return problem is not None

    # -- subscribe ---------------------------------------------------------------
    def subscribe(self, msg: Subscribe, conn: Connection) -> None:
        rid, channel = _rid(msg), msg.channel
        if self._invalid(conn, rid, channel):
            return
        positions = conn.session.positions
        if channel in positions:
            conn.send_error(rid, ALREADY_SUBSCRIBED, "already subscribed", {"channel": channel})
            return
        if len(positions) >= self.max_subscriptions:
            limit = self.max_subscriptions
            conn.send_error(rid, ErrorCode.LIMIT_EXCEEDED, "too many subscriptions", {"max": limit})
            return
        if channel not in self.hub.channels and self.hub.count() >= self.max_channels:
            limit = self.max_channels
            conn.send_error(rid, ErrorCode.LIMIT_EXCEEDED, "too many channels", {"max": limit})
            return
        verdict = self._check(msg, conn, self.hooks.subscribe, conn, channel)
        if verdict is not False:
            self.subscriptions.start(Joiner(conn), channel, msg, verdict, msg.recover)

    def _check(
        self, msg: Message, conn: Connection, hook: Callable[..., Any] | None, *args: Any
    ) -> Verdict:
        """Ask an authorization hook: True (no hook or granted), an awaitable to await
        later, or False once the refusal has been answered."""
        try:
            verdict = ask(hook, *args)
        except Exception as exc:  # noqa: BLE001 - becomes an error reply
            self.fail(msg, conn, exc)
            return False
        if verdict is False:
            text = SUBSCRIBE_REFUSED if isinstance(msg, Subscribe) else PUBLISH_REFUSED
            conn.send_error(_rid(msg), ErrorCode.FORBIDDEN, text, {"channel": args[1]})
        return verdict

    # -- publish -----------------------------------------------------------------
    def publish(self, msg: Publish, conn: Connection) -> None:
        rid, channel = _rid(msg), msg.channel
        if self._invalid(conn, rid, channel):
            return
        options = self.namespaces.resolve(channel)
        if not options.client_publish:
            error = "clients may not publish to this channel"
            conn.send_error(rid, ErrorCode.FORBIDDEN, error, {"channel": channel})
            return
        hook = self.hooks.publish
        if hook is None and channel not in conn.session.positions:
            conn.send_error(rid, ErrorCode.NOT_SUBSCRIBED, "not subscribed", {"channel": channel})
            return
        problem = payload_problem(msg.data)
        if problem is not None:  # refused before it is stored: never acknowledged, then lost
            path, reason = problem
            details = {"path": "$.data" + path[1:], "reason": reason}
            conn.send_error(rid, ErrorCode.INVALID_MESSAGE, "data cannot be delivered", details)
            return
        verdict = self._check(msg, conn, hook, conn, channel, msg.data)
        if verdict is not False:
            self.spawn(self._publish(msg, conn, options, verdict))

    async def _publish(
        self,
        msg: Publish,
        conn: Connection,
        options: ChannelOptions,
        verdict: Verdict,
    ) -> None:
        try:
            if not await granted(verdict):
                raise WireError(ErrorCode.FORBIDDEN, PUBLISH_REFUSED, {"channel": msg.channel})
            try:
                position = await self.broker.publish(
                    msg.channel,
                    msg.data,
                    history_size=options.history_size,
                    history_ttl=options.history_ttl,
                    history_bytes=self.history_bytes,
                    idempotency_key=msg.idempotency_key,
                )
            except Exception as exc:
                raise _unavailable(exc) from exc
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reply
            self.fail(msg, conn, exc)
            return
        rid = _rid(msg)
        if rid is not None:
            conn.send(Published(rid, msg.channel, position.offset))

    # -- presence and history ------------------------------------------------------
    def _subscribed(self, conn: Connection, rid: int | None, channel: str) -> bool:
        if channel in conn.session.positions:
            return True
        conn.send_error(rid, ErrorCode.NOT_SUBSCRIBED, "not subscribed", {"channel": channel})
        return False

    def presence(self, msg: PresenceRequest, conn: Connection) -> None:
        rid, channel = _rid(msg), msg.channel
        if not self._subscribed(conn, rid, channel):
            return
        if not self.namespaces.resolve(channel).presence:
            error = "presence is disabled for this channel"
            conn.send_error(rid, ErrorCode.FORBIDDEN, error, {"channel": channel})
        elif rid is not None:
            self.spawn(self._presence(msg, conn, rid))

    async def _presence(self, msg: PresenceRequest, conn: Connection, rid: int) -> None:
        try:
            members = await self.broker.presence(msg.channel)
        except Exception as exc:  # noqa: BLE001 - reported as unavailable
            self.fail(msg, conn, _unavailable(exc))
            return
        conn.send(PresenceReply(rid, msg.channel, members))

    def history(self, msg: HistoryRequest, conn: Connection) -> None:
        rid, channel = _rid(msg), msg.channel  # since/limit >= 0: the schema (Offset)
        if self._subscribed(conn, rid, channel) and rid is not None:
            self.spawn(self._history(msg, conn, rid))

    async def _history(self, msg: HistoryRequest, conn: Connection, rid: int) -> None:
        try:
            page = await self.broker.history(msg.channel, since=msg.since, limit=msg.limit)
        except Exception as exc:  # noqa: BLE001 - reported as unavailable
            self.fail(msg, conn, _unavailable(exc))
            return
        conn.send(HistoryReply(rid, msg.channel, page.epoch, page.publications))
