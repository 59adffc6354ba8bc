"""The server-side API of a node: publish, push, presence, disconnect and more.

Application code reaches it through the :class:`~fastcomm.app.App` while a
node serves it (``await app.publish(...)``); the HTTP server API calls the
same methods. Nothing here is on the per-message path.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from fastcomm.channels.broker import HistoryPage, StreamPosition
from fastcomm.channels.namespaces import channel_problem
from fastcomm.errors import CloseCode
from fastcomm.node.status import status_snapshot
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

    async def publish(self, channel: str, data: Any) -> StreamPosition:
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
        )

    def push(self, to: str, msg: Any) -> int:
        """Send ``msg`` to the live session whose id is ``to`` or, if there is none,
        to every live session of the user ``to``. Returns the number of
        connections it was written to. ``msg`` is a Struct or any
        msgspec-encodable value; it is encoded once per codec."""
        encoded: dict[Codec, bytes] = {}
        sent = 0
        for target in self._sessions(to):
            conn = target.conn
            if conn is None:
                continue
            codec = conn.codec
            data = encoded.get(codec)
            if data is None:
                data = encoded[codec] = codec.encode(msg)
            sent += conn.send_encoded(data)
        return sent

    def _sessions(self, to: str) -> list[Session]:
        sessions = self.node.sessions
        session = sessions.get(to)
        return [session] if session is not None else list(sessions.of_user(to))

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

    def disconnect_session(
        self, session_id: str, code: int = CloseCode.SESSION_REVOKED, reason: str = ""
    ) -> bool:
        """Close the connection of a live session with ``code``; False if not live.

        With 4003 (the default) the session is revoked first, so it cannot be
        resumed; with another code the client may resume as usual.
        """
        node = self.node
        session = node.sessions.get(session_id)
        conn = None if session is None else session.conn
        if session is None or conn is None:
            return False
        if code == CloseCode.SESSION_REVOKED:
            node.sessions.revoke(session)
        conn.close(code, reason or ("session revoked" if code == CloseCode.SESSION_REVOKED else ""))
        return True

    async def disconnect(
        self,
        *,
        user: str | None = None,
        session: str | None = None,
        code: int = CloseCode.SESSION_REVOKED,
        reason: str = "",
    ) -> int:
        """Close the live connections of ``session``, or else of every session of
        ``user`` (with both: that session only if it is ``user``'s); returns how
        many were closed (see :meth:`disconnect_session`)."""
        if session is not None:
            live = self.node.sessions.get(session)
            if live is None or (user is not None and live.user != user):
                return 0
            return int(self.disconnect_session(session, code, reason))
        if user is None:
            return 0
        targets = list(self.node.sessions.of_user(user))
        return sum(self.disconnect_session(s.id, code, reason) for s in targets)

    async def unsubscribe(self, user: str, channel: str) -> int:
        """Unsubscribe every live session of ``user`` from ``channel``; each gets an
        ``unsubscribed`` push (id null). Returns how many were unsubscribed."""
        self._check_channel(channel)
        done = 0
        for session in list(self.node.sessions.of_user(user)):
            conn = session.conn
            if conn is not None and self.node.channels.drop(conn, channel):
                done += 1
        return done

    async def channels(self, pattern: str | None = None) -> dict[str, int]:
        """Channels with subscribers on this node (matching the fnmatch ``pattern``),
        with their subscriber counts."""
        hub = self.node.channels.hub
        return {
            name: hub.subscribers(name)
            for name in list(hub.channels)
            if pattern is None or fnmatchcase(name, pattern)
        }

    async def info(self) -> dict[str, Any]:
        """The node's statistics: the ``/status`` document plus the fields
        Centrifugo's clients read (``uid``, ``name``, ``version``,
        ``num_clients``, ``num_users``, ``num_channels``, ``num_subs``, ``uptime``)."""
        node = self.node
        hub = node.channels.hub
        snapshot = status_snapshot(node)
        snapshot.update(
            uid=node.uid,
            name=node.name,
            version=__version__,
            num_clients=len(node.connections),
            num_users=len(node.sessions.by_user),
            num_channels=hub.count(),
            num_subs=sum(hub.subscribers(name) for name in list(hub.channels)),
            uptime=int(node.stats.uptime),
        )
        return snapshot
