"""Bringing one subscription live from a known position (the procedure of
:mod:`fastcomm.channels.subscriptions`)."""

from __future__ import annotations

from fastcomm.channels.broker import HistoryPage
from fastcomm.channels.hub import Hub, Joiner
from fastcomm.protocol.channel_messages import Recover, Subscribed

__all__ = ["bring_live", "is_recovered"]


def is_recovered(epoch: str, since: int, page: HistoryPage) -> bool:
    """True when ``page`` (read with ``since``, no limit) holds every publication
    after offset ``since`` of ``epoch`` up to the stream top (from offset 1 of
    any epoch when ``since`` is 0)."""
    if since and (page.epoch != epoch or since > page.offset):
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
