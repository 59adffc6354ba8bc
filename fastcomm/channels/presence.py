"""Presence of a connection in a channel: the member record and join/leave events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastcomm.channels.broker import Channels
from fastcomm.channels.namespaces import Namespaces
from fastcomm.protocol.channel_messages import Join, Leave, Member

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["enter", "keep", "leave", "restore"]

KEEP_BATCH = 1024
"""``(channel, session)`` pairs kept alive per broker call."""

log = logging.getLogger("fastcomm.channels")


async def enter(
    broker: Channels, namespaces: Namespaces, conn: Connection, channel: str, ttl: float
) -> None:
    """Add the connection to the channel's presence (expiring after ``ttl`` seconds
    unless kept) and publish ``join``, as enabled."""
    options = namespaces.resolve(channel)
    try:
        if options.presence:
            member = Member(conn.session_id, conn.user, conn.meta)
            await broker.presence_add(channel, member, ttl)
        if options.join_leave:
            await broker.publish_event(channel, Join(channel, conn.session_id, conn.user))
    except Exception as exc:  # noqa: BLE001 - the backend failed: said once, not a bug
        log.warning("joining presence of %r failed: %r", channel, exc)


async def leave(
    broker: Channels, namespaces: Namespaces, session: str, user: str | None, names: list[str]
) -> None:
    """Remove ``session`` from the presence of every channel (one broker call) and
    publish ``leave`` where enabled."""
    resolved = [(channel, namespaces.resolve(channel)) for channel in names]
    present = [channel for channel, options in resolved if options.presence]
    if present:
        try:
            await broker.presence_leave(session, present)
        except Exception as exc:  # noqa: BLE001 - no leave events either: still listed
            log.warning("leaving presence of %r failed: %r", present[0], exc)
            return
    for channel, options in resolved:
        if options.join_leave:
            try:
                await broker.publish_event(channel, Leave(channel, session, user))
            except Exception as exc:  # noqa: BLE001 - the backend failed
                log.warning("leaving presence of %r failed: %r", channel, exc)


async def restore(
    broker: Channels, namespaces: Namespaces, live: list[tuple[str, Connection]], ttl: float
) -> None:
    """Add every ``(channel, connection)`` of ``live`` to presence again, where it is
    enabled, with no ``join`` (they never left): after the backend came back, it may
    have lost them."""
    for channel, conn in live:
        if namespaces.resolve(channel).presence:
            try:
                await broker.presence_add(
                    channel, Member(conn.session_id, conn.user, conn.meta), ttl
                )
            except Exception as exc:  # noqa: BLE001 - lost again: the next return retries
                log.warning("restoring presence failed: %r", exc)
                return


async def keep(broker: Channels, live: list[tuple[str, str]], ttl: float) -> None:
    """Push back the expiry of the ``live`` members, :data:`KEEP_BATCH` per broker call;
    a failure is logged and the rest waits for the next sweep."""
    for start in range(0, len(live), KEEP_BATCH):
        try:
            await broker.presence_keep(live[start : start + KEEP_BATCH], ttl)
        except Exception as exc:  # noqa: BLE001 - retried at the next sweep
            log.warning("keeping presence failed: %r", exc)
            return
