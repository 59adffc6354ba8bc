"""Subscriptions: from a known position to live, with no gap and no duplicate.

:class:`Subscriptions` owns every subscription of the node's connections
while it is set up (the hub's ``pending`` is the one index of them) and the
recovery that brings it live. One procedure (:func:`bring_live`) serves
``subscribe``, with or without ``recover``, and a resumed session's restore:

1. register the subscription in the hub as catching up and make sure this
   node is subscribed in the broker; from then on every publication the
   broker delivers is buffered for it;
2. read the history after the client's position (or just the stream top);
3. without awaiting anything more: send ``subscribed``, the missed
   publications, then the buffer minus what the history already covered,
   and go live (:meth:`~fastcomm.channels.hub.Hub.go_live`).

Step 1 before step 2 closes the window: a publication is stored before the
history read (it is in the history) or delivered after buffering began (it is
in the buffer); offsets remove the overlap. Offset 0 ("nothing received") is
recovered by any epoch's history from offset 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastcomm.channels import presence
from fastcomm.channels.broker import BrokerHandle
from fastcomm.channels.catchup import bring_live, is_recovered
from fastcomm.channels.hooks import SUBSCRIBE_REFUSED, ChannelHooks, Verdict, ask, granted
from fastcomm.channels.hub import Hub, Joiner, Position, Spawn
from fastcomm.channels.namespaces import Namespaces
from fastcomm.errors import ErrorCode, WireError
from fastcomm.protocol.channel_messages import Recover, Subscribe, Unsubscribe, Unsubscribed
from fastcomm.protocol.messages import Message

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["NOTHING", "Fail", "Subscriptions", "bring_live", "is_recovered"]

log = logging.getLogger("fastcomm.channels")

Fail = Callable[[Message, "Connection", Exception], None]
"""Answers a request with the error reply an exception stands for."""

NOTHING: Position = ("", 0)
"""The position of a subscription that received nothing (offset 0: any epoch follows)."""


def _unchanged(conn: Connection) -> None:
    pass


class Subscriptions:
    """The subscriptions of this node's connections: set-up, recovery, presence, leave."""

    def __init__(
        self,
        hub: Hub,
        broker: BrokerHandle,
        namespaces: Namespaces,
        hooks: ChannelHooks,
        spawn: Spawn,
        fail: Fail,
        presence_ttl: float = 0.0,
    ) -> None:
        self.hub = hub
        self.broker = broker
        self.namespaces = namespaces
        self.hooks = hooks
        self.spawn = spawn
        self.fail = fail
        self.presence_ttl = presence_ttl  # a presence record lives this long unless kept; 0: ever
        self.changed: Callable[[Connection], None] = _unchanged  # went live, or was left

    # -- set-up ----------------------------------------------------------------------
    def start(
        self,
        entry: Joiner,
        channel: str,
        msg: Subscribe | None,
        verdict: Verdict,
        recover: Recover | None,
    ) -> None:
        """Reserve ``channel`` for ``entry`` (limits and duplicates hold at once) and
        run its set-up as a task; ``msg`` is None when restoring a resumed session."""
        position = entry.position
        entry.conn.session.positions[channel] = position if position else NOTHING
        self.hub.reserve(channel, entry)
        self.spawn(self._join(entry, channel, msg, verdict, recover))

    async def _join(
        self,
        entry: Joiner,
        channel: str,
        msg: Subscribe | None,
        verdict: Verdict,
        recover: Recover | None,
    ) -> None:
        """Await the authorization, catch up, enter presence; answer failures."""
        conn = entry.conn
        try:
            try:
                allowed = await granted(verdict)
            except Exception as exc:  # noqa: BLE001 - becomes an error reply
                self._refuse(entry, channel, msg, exc)
                return
            if not allowed:
                error = WireError(ErrorCode.FORBIDDEN, SUBSCRIBE_REFUSED, {"channel": channel})
                self._refuse(entry, channel, msg, error)
                return
            if entry.cancelled:
                return
            rid = None if msg is None or type(msg.id) is not int else msg.id
            announce = msg is None or rid is not None  # restored: pushed with id null
            try:
                if not await bring_live(self.hub, entry, channel, rid, recover, announce=announce):
                    return
                self.changed(conn)
            except Exception as exc:
                log.warning("channel backend failed: %r", exc, exc_info=exc)
                error = WireError(ErrorCode.UNAVAILABLE, "channel backend unavailable")
                self._refuse(entry, channel, msg, error)
                return
            await presence.enter(self.broker, self.namespaces, conn, channel, self.presence_ttl)
        finally:
            entry.settle()

    def _refuse(self, entry: Joiner, channel: str, msg: Subscribe | None, exc: Exception) -> None:
        conn = entry.conn
        if entry.cancelled:
            return  # the connection is gone; detach kept what is resumable
        conn.session.positions.pop(channel, None)
        self.hub.leave(conn, channel)
        if msg is not None:
            self.fail(msg, conn, exc)
            return
        if not isinstance(exc, WireError):
            log.error("restoring channel %r failed", channel, exc_info=exc)
        conn.send(Unsubscribed(None, channel))

    # -- a connection's life ---------------------------------------------------------
    def detached(self, conn: Connection) -> None:
        """The connection is gone: leave every channel and presence list now, and
        keep in ``session.positions`` the last offset delivered on each channel
        (channels that never got ``subscribed`` are forgotten)."""
        session = conn.session
        positions = session.positions
        left = []
        for channel in list(positions):
            entry = self.hub.joiner(conn, channel)
            if entry is not None:
                entry.cancelled = True
                entry.settle()
            position, joined = self.hub.leave(conn, channel)
            if position is None:
                del positions[channel]
            else:
                positions[channel] = position
            if joined:
                left.append(channel)
        if left:
            self.spawn(
                presence.leave(self.broker, self.namespaces, conn.session_id, conn.user, left)
            )

    def positions(self, conn: Connection) -> dict[str, Position]:
        """The position of each subscription of a live ``conn`` now: what a
        checkpoint of its session keeps (never ahead of what was sent)."""
        hub, current = self.hub, {}
        for channel, start in conn.session.positions.items():
            current[channel] = hub.position(conn, channel) or start
        return current

    def attached(self, conn: Connection, resumed: bool) -> None:
        """A resumed session: restore each subscription from its recorded position; if
        the subscribe hook now refuses (or the broker fails), push ``unsubscribed``."""
        if not resumed:
            return
        for channel, position in list(conn.session.positions.items()):
            try:
                verdict = ask(self.hooks.subscribe, conn, channel)
            except Exception:
                log.exception("subscribe hook failed while restoring %r", channel)
                verdict = False
            entry = Joiner(conn, position)
            epoch, offset = position
            self.start(entry, channel, None, verdict, Recover(offset, epoch))

    # -- leaving ---------------------------------------------------------------------
    def leave(self, conn: Connection, channel: str) -> bool:
        """Take ``conn`` out of ``channel`` and its presence; False if not subscribed."""
        if conn.session.positions.pop(channel, None) is None:
            return False
        _, joined = self.hub.leave(conn, channel)
        self.changed(conn)
        if joined:
            self.spawn(
                presence.leave(self.broker, self.namespaces, conn.session_id, conn.user, [channel])
            )
        return True

    def unsubscribe(self, msg: Unsubscribe, conn: Connection) -> None:
        """Answer ``unsubscribe``, after the ``subscribe`` it follows if one is in flight."""
        entry = self.hub.joiner(conn, msg.channel)
        if entry is not None and not entry.settled:
            self.spawn(self._unsubscribe_after(entry, msg, conn))
        else:
            self._unsubscribe(msg, conn)

    async def _unsubscribe_after(self, entry: Joiner, msg: Unsubscribe, conn: Connection) -> None:
        await entry.wait_settled()
        if not entry.cancelled:
            self._unsubscribe(msg, conn)

    def _unsubscribe(self, msg: Unsubscribe, conn: Connection) -> None:
        rid, channel = (msg.id if type(msg.id) is int else None), msg.channel
        if not self.leave(conn, channel):
            conn.send_error(rid, ErrorCode.NOT_SUBSCRIBED, "not subscribed", {"channel": channel})
        elif rid is not None:
            conn.send(Unsubscribed(rid, channel))

    def drop(self, conn: Connection, channel: str) -> bool:
        """Unsubscribe ``conn`` from ``channel`` on the server's initiative, pushing
        ``unsubscribed`` (id null) after any ``subscribe`` in flight is answered."""
        entry = self.hub.joiner(conn, channel)
        if entry is not None and not entry.settled:
            self.spawn(self._drop_after(entry, conn, channel))
            return True
        if not self.leave(conn, channel):
            return False  # not subscribed
        conn.send(Unsubscribed(None, channel))
        return True

    async def _drop_after(self, entry: Joiner, conn: Connection, channel: str) -> None:
        await entry.wait_settled()
        if not entry.cancelled:  # still connected: the subscribe was answered
            self.drop(conn, channel)
