"""Channel support of a server: the routes of the channel requests and their checks.

:class:`Channels` is created by the server at startup; it owns the broker,
the hub and the namespace options, adds the routes for ``subscribe``,
``unsubscribe``, ``publish``, ``presence`` and ``history``, and hooks
connection attach (resume) and detach. Each route validates synchronously,
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

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from fastcomm.channels import recovery
from fastcomm.channels.broker import Broker
from fastcomm.channels.hub import Hub, Joiner
from fastcomm.channels.namespaces import ChannelOptions, Namespaces, channel_problem
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
    Unsubscribed,
)
from fastcomm.protocol.messages import Message
from fastcomm.protocol.payload import payload_problem

if TYPE_CHECKING:
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection

__all__ = ["ALREADY_SUBSCRIBED", "Channels"]

log = logging.getLogger("fastcomm.channels")

ALREADY_SUBSCRIBED = ErrorCode.ALREADY_SUBSCRIBED
_PUBLISH_REFUSED = "not allowed to publish to this channel"  # the publish hook said no
"""Error code of a ``subscribe`` to a channel the connection is already in."""


def _rid(msg: Message) -> int | None:
    rid = msg.id
    return rid if type(rid) is int else None


def _unavailable(exc: Exception) -> WireError:
    log.warning("channel backend failed: %r", exc, exc_info=exc)
    return WireError(ErrorCode.UNAVAILABLE, "channel backend unavailable")


async def _granted(pending: Awaitable[Any]) -> bool:
    return bool(await pending)


class Channels:
    """Channel features of one server (see the module docstring)."""

    def __init__(self, node: Node, broker: Broker) -> None:
        config = node.config
        self.node = node
        self.app = node.app
        self.namespaces = Namespaces(config)
        self.broker = broker
        self.spawn = node.router.spawn
        self.fail = node.router.fail
        self.hub = Hub(broker, self.spawn)
        self.max_subscriptions = config.max_subscriptions
        self.max_channels = config.max_channels
        self.max_channel_length = config.max_channel_length
        self.joining: dict[tuple[Connection, str], Joiner] = {}

    def install(self) -> None:
        """Add the routes and the attach/detach callbacks to the node."""
        router = self.node.router
        router.add(Subscribe, self.subscribe)
        router.add(Unsubscribe, self.unsubscribe)
        router.add(Publish, self.publish)
        router.add(PresenceRequest, self.presence)
        router.add(HistoryRequest, self.history)
        self.node.on_attach.append(self.attached)
        self.node.on_detach.append(self.detached)

    def attached(self, conn: Connection, resumed: bool) -> None:
        recovery.attach(self, conn, resumed)

    def detached(self, conn: Connection) -> None:
        recovery.detach(self, conn)

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
        if channel not in self.hub.channels and self._channel_count() >= self.max_channels:
            limit = self.max_channels
            conn.send_error(rid, ErrorCode.LIMIT_EXCEEDED, "too many channels", {"max": limit})
            return
        recover = msg.recover
        pending = self._check(msg, conn, self.app.subscribe_hook, conn, channel)
        if pending is False:
            return
        entry = Joiner(conn)
        positions[channel] = ("", 0)  # reserved: limits and duplicates hold while it sets up
        self.joining[(conn, channel)] = entry
        self.spawn(recovery.join(self, conn, channel, entry, recover, pending, msg))

    def _channel_count(self) -> int:
        """Channels held on this node, counting those still being set up."""
        hub = self.hub.channels
        return len(hub) + len({ch for _, ch in self.joining if ch not in hub})

    def _check(
        self, msg: Message, conn: Connection, hook: Callable[..., Any] | None, *args: Any
    ) -> Awaitable[Any] | Literal[False] | None:
        """Run an authorization hook: None (no hook or granted), an awaitable to
        await later, or False once the refusal has been answered."""
        if hook is None:
            return None
        try:
            result = hook(*args)
        except Exception as exc:  # noqa: BLE001 - becomes an error reply
            self.fail(msg, conn, exc)
            return False
        if inspect.isawaitable(result):
            return result
        if not result:
            text = recovery.REFUSED if isinstance(msg, Subscribe) else _PUBLISH_REFUSED
            conn.send_error(_rid(msg), ErrorCode.FORBIDDEN, text, {"channel": args[1]})
            return False
        return None

    # -- unsubscribe -------------------------------------------------------------
    def unsubscribe(self, msg: Unsubscribe, conn: Connection) -> None:
        entry = self.joining.get((conn, msg.channel))
        if entry is not None:  # answer after the subscribe it follows
            self.spawn(self._unsubscribe_after(entry, msg, conn))
        else:
            self._unsubscribe(msg, conn)

    async def _unsubscribe_after(self, entry: Joiner, msg: Unsubscribe, conn: Connection) -> None:
        await entry.wait_settled()
        if not entry.cancelled:
            self._unsubscribe(msg, conn)

    def _unsubscribe(self, msg: Unsubscribe, conn: Connection) -> None:
        rid, channel = _rid(msg), msg.channel
        if not self._leave(conn, channel):
            conn.send_error(rid, ErrorCode.NOT_SUBSCRIBED, "not subscribed", {"channel": channel})
        elif rid is not None:
            conn.send(Unsubscribed(rid, channel))

    def _leave(self, conn: Connection, channel: str) -> bool:
        if conn.session.positions.pop(channel, None) is None:
            return False
        _, joined = self.hub.leave(conn, channel)
        if joined:
            self.spawn(recovery.leave_presence(self, conn.session_id, conn.user, [channel]))
        return True

    def drop(self, conn: Connection, channel: str) -> bool:
        """Unsubscribe ``conn`` from ``channel`` on the server's initiative, pushing
        ``unsubscribed`` (id null) after any ``subscribe`` in flight is answered."""
        entry = self.joining.get((conn, channel))
        if entry is not None:
            self.spawn(self._drop_after(entry, conn, channel))
            return True
        if not self._leave(conn, channel):
            return False  # not subscribed
        conn.send(Unsubscribed(None, channel))
        return True

    async def _drop_after(self, entry: Joiner, conn: Connection, channel: str) -> None:
        await entry.wait_settled()
        if not entry.cancelled:  # still connected: the subscribe was answered
            self.drop(conn, channel)

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
        hook = self.app.publish_hook
        if hook is None and channel not in conn.session.positions:
            conn.send_error(rid, ErrorCode.NOT_SUBSCRIBED, "not subscribed", {"channel": channel})
            return
        problem = payload_problem(msg.data)
        if problem is not None:  # refused before it is stored: never acknowledged, then lost
            path, reason = problem
            details = {"path": "$.data" + path[1:], "reason": reason}
            conn.send_error(rid, ErrorCode.INVALID_MESSAGE, "data cannot be delivered", details)
            return
        pending = self._check(msg, conn, hook, conn, channel, msg.data)
        if pending is not False:
            self.spawn(self._publish(msg, conn, options, pending))

    async def _publish(
        self,
        msg: Publish,
        conn: Connection,
        options: ChannelOptions,
        pending: Awaitable[Any] | None,
    ) -> None:
        try:
            if pending is not None and not await _granted(pending):
                raise WireError(ErrorCode.FORBIDDEN, _PUBLISH_REFUSED, {"channel": msg.channel})
            try:
                position = await self.broker.publish(
                    msg.channel,
                    msg.data,
                    history_size=options.history_size,
                    history_ttl=options.history_ttl,
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
