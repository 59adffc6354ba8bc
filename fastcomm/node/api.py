"""The server-side API of a node: publish, push, presence, disconnect and more.

Application code reaches it through the :class:`~fastcomm.app.App` while a
node serves it (``await app.publish(...)``); the HTTP server API calls the
same methods. They act on the whole server: what targets sessions
(``push``, ``disconnect``, ``unsubscribe``) and what counts them
(``channels``) is applied by every node sharing the broker to its own
sessions (:mod:`fastcomm.node.cluster`), and the counts are summed. Nothing
here is on the per-message path.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import msgspec

from fastcomm.channels.broker import HistoryPage, StreamPosition
from fastcomm.channels.namespaces import channel_problem
from fastcomm.errors import CloseCode
from fastcomm.node.commands import (
    ChannelCounts,
    Command,
    Describe,
    Disconnect,
    NodeInfo,
    Push,
    Snapshot,
    Unsubscribe,
)
from fastcomm.node.status import own_status, status_snapshot
from fastcomm.protocol.channel_messages import Member
from fastcomm.protocol.payload import payload_problem, to_payload
from fastcomm.version import __version__

if TYPE_CHECKING:
    from fastcomm.node.node import Node
    from fastcomm.protocol.codec import Codec
    from fastcomm.sessions.session import Session

__all__ = ["ServerApi"]


class ServerApi:
    """What a trusted backend may do on a node (see each method's contract)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _check_channel(self, channel: str) -> None:
        problem = channel_problem(channel, self.node.channels.max_channel_length)
        if problem is not None:
            raise ValueError(problem)

    async def publish(
        self, channel: str, data: Any, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        """Publish ``data`` to every subscriber of ``channel`` and return its position.

        The namespace's history options apply; ``client_publish`` and the
        publish hook do not (the server is trusted). Raises
        :class:`ValueError` for an invalid channel name or data that some
        encoding cannot carry (see :mod:`fastcomm.protocol.payload`), before
        anything is stored, and whatever the broker raises.
        """
        self._check_channel(channel)
        data = to_payload(data)
        problem = payload_problem(data)
        if problem is not None:
            raise ValueError(f"data cannot be delivered: {problem[1]} at {problem[0]}")
        channels = self.node.channels
        options = channels.namespaces.resolve(channel)
        return await channels.broker.publish(
            channel,
            data,
            history_size=options.history_size,
            history_ttl=options.history_ttl,
            history_bytes=channels.history_bytes,
            idempotency_key=idempotency_key,
        )

    async def push(self, to: str, msg: Any) -> int:
        """Send ``msg`` to the live session whose id is ``to`` or, if there is none,
        to every live session of the user ``to``, on every node. Returns the number
        of connections it was written to (on the nodes that answered within
        ``command_timeout``). ``msg`` is a Struct or any msgspec-encodable value; each
        node encodes it once per codec."""
        return sum(
            await self.node.cluster.ask(Push(to, msgspec.to_builtins(msg, builtin_types=(bytes,))))
        )

    def _push(self, command: Push) -> int:
        encoded: dict[Codec, bytes] = {}
        sent = 0
        for target in self._sessions(command.to):
            conn = target.conn
            if conn is None:
                continue
            codec = conn.codec
            data = encoded.get(codec)
            if data is None:
                data = encoded[codec] = codec.encode(command.msg)
            sent += conn.send_encoded(data)
        return sent

    def _sessions(self, to: str) -> list[Session]:
        sessions = self.node.sessions
        session = sessions.get(to)
        return [session] if session is not None else list(sessions.of_user(to))

    async def apply(self, command: Command) -> Any:
        """Apply ``command`` to this node's own sessions (see :mod:`fastcomm.node.commands`)."""
        if type(command) is Push:
            return self._push(command)
        if type(command) is Disconnect:
            return await self._disconnect(command)
        if type(command) is Unsubscribe:
            return self._unsubscribe(command)
        if type(command) is ChannelCounts:
            return self._channels(command.pattern)
        if type(command) is Snapshot:
            return own_status(self.node) if command.server == self.node.config.server_id else None
        assert type(command) is Describe
        return msgspec.to_builtins(self.node_info())

    async def presence(self, channel: str) -> list[Member]:
        """Members present in ``channel`` (whatever its namespace's presence option)."""
        self._check_channel(channel)
        return await self.node.channels.broker.presence(channel)

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        """Retained publications of ``channel`` (see :meth:`Broker.history`)."""
        self._check_channel(channel)
        return await self.node.channels.broker.history(channel, since=since, limit=limit)

    async def disconnect(
        self,
        *,
        user: str | None = None,
        session: str | None = None,
        code: int = CloseCode.SESSION_REVOKED,
        reason: str = "",
    ) -> int:
        """Close the live connections of ``session``, or else of every session of
        ``user`` (with both: that session only if it is ``user``'s), on every node;
        returns how many were closed. With 4003 (the default) the sessions are
        revoked first, so they cannot be resumed; with another code the client may
        resume as usual."""
        if session is None and user is None:
            return 0
        reason = reason or ("session revoked" if code == CloseCode.SESSION_REVOKED else "")
        return sum(await self.node.cluster.ask(Disconnect(user, session, code, reason)))

    async def _disconnect(self, command: Disconnect) -> int:
        sessions = self.node.sessions
        if command.session is not None:
            live = sessions.get(command.session)
            user = command.user
            targets = [] if live is None or (user is not None and live.user != user) else [live]
        else:
            assert command.user is not None
            targets = list(sessions.of_user(command.user))
        closed = 0
        for target in targets:
            conn = target.conn
            if conn is None:
                continue
            if command.code == CloseCode.SESSION_REVOKED:
                await sessions.revoke(target)
            conn.close(command.code, command.reason)
            closed += 1
        return closed

    async def unsubscribe(self, user: str, channel: str) -> int:
        """Unsubscribe every live session of ``user`` from ``channel``, on every node;
        each gets an ``unsubscribed`` push (id null). Returns how many were
        unsubscribed."""
        self._check_channel(channel)
        return sum(await self.node.cluster.ask(Unsubscribe(user, channel)))

    def _unsubscribe(self, command: Unsubscribe) -> int:
        done = 0
        for session in list(self.node.sessions.of_user(command.user)):
            conn = session.conn
            if conn is not None and self.node.channels.drop(conn, command.channel):
                done += 1
        return done

    async def channels(self, pattern: str | None = None) -> dict[str, int]:
        """Channels with subscribers on any node (matching the fnmatch ``pattern``),
        with their subscriber counts summed over the nodes."""
        counts: dict[str, int] = {}
        for answer in await self.node.cluster.ask(ChannelCounts(pattern)):
            for name, n in answer.items():
                counts[name] = counts.get(name, 0) + n
        return counts

    def _channels(self, pattern: str | None) -> dict[str, int]:
        hub = self.node.channels.hub
        return {
            name: hub.subscribers(name)
            for name in list(hub.channels)
            if pattern is None or fnmatchcase(name, pattern)
        }

    def node_info(self) -> NodeInfo:
        """What this node announces in the registry."""
        node = self.node
        hub = node.channels.hub
        return NodeInfo(
            uid=node.uid,
            name=node.name,
            version=__version__,
            num_clients=len(node.connections),
            num_users=len(node.sessions.by_user),
            num_channels=hub.count(),
            num_subs=sum(hub.subscribers(name) for name in list(hub.channels)),
            uptime=int(node.stats.uptime),
        )

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node of the server: this one's :meth:`info` first, then what the
        other listed nodes answered within ``command_timeout``, by name."""
        _, *others = await self.node.cluster.ask(Describe())
        return [await self.info(), *sorted(others, key=lambda info: str(info.get("name")))]

    async def info(self) -> dict[str, Any]:
        """The node's statistics: the ``/status`` document plus the fields
        Centrifugo's clients read (``uid``, ``name``, ``version``,
        ``num_clients``, ``num_users``, ``num_channels``, ``num_subs``, ``uptime``)."""
        snapshot = status_snapshot(self.node)
        snapshot.update(msgspec.to_builtins(self.node_info()))
        return snapshot
