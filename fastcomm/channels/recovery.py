"""Recovery: from a known position to live, with no gap and no duplicate.

One procedure serves a plain ``subscribe``, a ``subscribe`` with ``recover``
and the restoration of a resumed session's subscriptions (:func:`bring_live`):

1. register the subscription in the hub as catching up and make sure this
   node is subscribed in the broker; from then on every publication the
   broker delivers is buffered for it;
2. read the history after the client's position (or just the stream top);
3. without awaiting anything more: send ``subscribed``, the missed
   publications, then the buffer minus what the history already covered,
   and go live (:meth:`~fastcomm.channels.hub.Hub.go_live`).

Step 1 before step 2 closes the window: a publication is either stored
before the history read (so it is in the history) or delivered after the
subscription started buffering (so it is in the buffer); offsets remove the
overlap.

Around it, :func:`join` is the task of one subscription (authorization,
catch-up, presence), :func:`detach` records positions and leaves presence
when a connection goes away, :func:`attach` restores a resumed session.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from fastcomm.channels.broker import HistoryPage
from fastcomm.channels.hub import Hub, Joiner
from fastcomm.errors import ErrorCode, WireError
from fastcomm.protocol.channel_messages import (
    Join,
    Leave,
    Member,
    Recover,
    Subscribe,
    Subscribed,
    Unsubscribed,
)

if TYPE_CHECKING:
    from fastcomm.channels.handlers import Channels
    from fastcomm.sessions.connection import Connection

__all__ = [
    "REFUSED",
    "attach",
    "bring_live",
    "detach",
    "enter_presence",
    "is_recovered",
    "join",
    "leave_presence",
    "restore",
]

log = logging.getLogger("fastcomm.channels")
Pending = Awaitable[Any] | bool | None
"""An authorization outcome: None (granted or no hook), False (refused), or to await."""
#: The ``forbidden`` error's message when the subscribe hook refuses.
REFUSED = "not allowed to subscribe to this channel"


def is_recovered(epoch: str, since: int, page: HistoryPage) -> bool:
    """True when ``page`` (read with ``since``, no limit) holds every publication
    after offset ``since`` of ``epoch`` up to the stream top."""
    if page.epoch != epoch or since > page.offset:
        return False
    if since == page.offset:
        return True
    pubs = page.publications
    return bool(pubs) and pubs[0].offset == since + 1 and pubs[-1].offset == page.offset


async def bring_live(
    hub: Hub,
    entry: Joiner,
    channel: str,
    rid: int | None,
    recover: Recover | None,
    *,
    announce: bool = True,
) -> bool:
    """Bring ``entry`` live on ``channel``: send ``subscribed`` (with ``rid``; not at
    all if ``announce`` is false: a request without id gets no success reply) and
    what the client missed since ``recover``, if history still holds it.

    Returns False, having sent nothing, if the entry was cancelled meanwhile.
    Raises what the broker raised (the entry is then still registered; the
    caller removes it).
    """
    await hub.enter(channel, entry)
    if entry.cancelled:
        return False
    broker = hub.broker
    page: HistoryPage | None = None
    since = 0
    if recover is None:
        epoch, top = await broker.position(channel)
    else:
        since = recover.offset
        page = await broker.history(channel, since=since)
        epoch, top = page.epoch, page.offset
        if not is_recovered(recover.epoch, since, page):
            page = None
    if entry.cancelled:
        return False
    # No await from here on: what the broker delivers meanwhile waits in the buffer.
    conn = entry.conn
    reply = Subscribed(rid, channel, top, epoch, page is not None)
    if conn.send(reply) if announce else not conn.closed:
        if page is None:
            entry.epoch, entry.last = epoch, top
        else:
            entry.epoch, entry.last = epoch, since
            for pub in page.publications:
                if not entry.send(pub):
                    break
    hub.go_live(channel, entry)
    return True


def detach(channels: Channels, conn: Connection) -> None:
    """The connection is gone: leave every channel and presence list now, and
    keep in ``session.positions`` the last offset delivered on each channel
    (channels that never got ``subscribed`` are forgotten)."""
    positions = conn.session.positions
    left = []
    for channel in list(positions):
        entry = channels.joining.pop((conn, channel), None)
        if entry is not None:
            entry.cancelled = True
            entry.settle()
        position, joined = channels.hub.leave(conn, channel)
        if position is None and entry is not None:
            position = entry.position
        if position is None:
            del positions[channel]
        else:
            positions[channel] = position
        if joined:
            left.append(channel)
    if left:
        channels.spawn(leave_presence(channels, conn.session_id, conn.user, left))


def attach(channels: Channels, conn: Connection, resumed: bool) -> None:
    """A resumed session: restore each subscription from its recorded position."""
    if not resumed:
        return
    for channel, position in list(conn.session.positions.items()):
        restore(channels, conn, channel, Joiner(conn, position))


def restore(channels: Channels, conn: Connection, channel: str, entry: Joiner) -> None:
    """Re-subscribe a resumed session to ``channel`` from ``entry``'s position; if
    the subscribe hook now refuses (or the broker fails), push ``unsubscribed``."""
    pending: Pending = None
    hook = channels.app.subscribe_hook
    if hook is not None:
        try:
            pending = hook(conn, channel)
        except Exception:
            log.exception("subscribe hook failed while restoring %r", channel)
            pending = False
        if not inspect.isawaitable(pending):
            pending = None if pending else False
    channels.joining[(conn, channel)] = entry
    epoch, offset = entry.position or ("", 0)
    channels.spawn(join(channels, conn, channel, entry, Recover(offset, epoch), pending, None))


async def join(
    channels: Channels,
    conn: Connection,
    channel: str,
    entry: Joiner,
    recover: Recover | None,
    pending: Pending,
    msg: Subscribe | None,
) -> None:
    """The task of one subscription (``msg``, or None when restoring): await the
    authorization, catch up, enter presence; answer failures; settle ``entry``."""
    try:
        if pending is not None:
            try:
                allowed = pending if isinstance(pending, bool) else bool(await pending)
            except Exception as exc:  # noqa: BLE001 - becomes an error reply
                _refuse(channels, conn, channel, entry, msg, exc)
                return
            if not allowed:
                error = WireError(ErrorCode.FORBIDDEN, REFUSED, {"channel": channel})
                _refuse(channels, conn, channel, entry, msg, error)
                return
            if entry.cancelled:
                return
        rid = None if msg is None or type(msg.id) is not int else msg.id
        announce = msg is None or rid is not None  # restored: pushed with id null
        try:
            if not await bring_live(channels.hub, entry, channel, rid, recover, announce=announce):
                return
        except Exception as exc:
            log.warning("channel backend failed: %r", exc, exc_info=exc)
            error = WireError(ErrorCode.UNAVAILABLE, "channel backend unavailable")
            _refuse(channels, conn, channel, entry, msg, error)
            return
        await enter_presence(channels, conn, channel)
    finally:
        if channels.joining.get((conn, channel)) is entry:
            del channels.joining[(conn, channel)]
        entry.settle()


def _refuse(
    channels: Channels,
    conn: Connection,
    channel: str,
    entry: Joiner,
    msg: Subscribe | None,
    exc: Exception,
) -> None:
    if entry.cancelled:
        return  # the connection is gone; detach kept what is resumable
    conn.session.positions.pop(channel, None)
    channels.hub.leave(conn, channel)
    if msg is not None:
        channels.fail(msg, conn, exc)
        return
    if not isinstance(exc, WireError):
        log.error("restoring channel %r failed", channel, exc_info=exc)
    conn.send(Unsubscribed(None, channel))


async def enter_presence(channels: Channels, conn: Connection, channel: str) -> None:
    """Add the connection to the channel's presence and publish ``join``, as enabled."""
    options = channels.namespaces.resolve(channel)
    broker = channels.broker
    try:
        if options.presence:
            await broker.presence_add(channel, Member(conn.session_id, conn.user, conn.meta))
        if options.join_leave:
            await broker.publish_event(channel, Join(channel, conn.session_id, conn.user))
    except Exception:
        log.exception("joining presence of %r failed", channel)


async def leave_presence(
    channels: Channels, session: str, user: str | None, names: list[str]
) -> None:
    """Remove ``session`` from the presence of each channel and publish ``leave``."""
    broker = channels.broker
    for channel in names:
        options = channels.namespaces.resolve(channel)
        try:
            if options.presence:
                await broker.presence_remove(channel, session)
            if options.join_leave:
                await broker.publish_event(channel, Leave(channel, session, user))
        except Exception:
            log.exception("leaving presence of %r failed", channel)
