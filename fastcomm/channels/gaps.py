"""Gaps in what the broker delivers: filled from history, or said.

A publication beyond the next one of its channel (:func:`repair`): the hub
holds what the broker delivers for the channel meanwhile, reads the missing
offsets from history and delivers them in order; if history no longer has
them, or the epoch changed, every live subscriber is pushed ``subscribed``
with ``"id": null`` and ``"recovered": false`` at the new position (the
signal a resume uses: clients report the loss), and delivery goes on from
there. Then what was held is delivered.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastcomm.protocol.channel_messages import Publication, Subscribed

if TYPE_CHECKING:
    from fastcomm.channels.hub import ChannelState, Hub

__all__ = ["repair"]

log = logging.getLogger("fastcomm.channels")


async def repair(hub: Hub, state: ChannelState, pub: Publication) -> None:
    """``pub`` skipped offsets: deliver the missing ones from history, or tell
    every live subscriber they are lost; then what was held meanwhile."""
    epoch, offset = state.epoch, state.offset
    missing: list[Publication] | None = None
    if epoch == pub.epoch:
        try:
            count = pub.offset - 1 - offset
            page = await hub.broker.history(state.name, since=offset, limit=count)
        except Exception as exc:  # noqa: BLE001 - the gap is reported instead
            log.warning("reading history of %r to fill a gap failed: %r", state.name, exc)
        else:
            pubs = page.publications
            covered = bool(pubs) and pubs[0].offset == offset + 1
            if page.epoch == epoch and covered and pubs[-1].offset >= pub.offset - 1:
                missing = [p for p in pubs if p.offset < pub.offset]
    if hub.channels.get(state.name) is not state:
        return
    if missing is None:
        hub.gaps_lost += 1
        if epoch == pub.epoch:
            text = "publications %d..%d were not delivered and history no longer has them"
            log.warning("channel %r: " + text, state.name, offset + 1, pub.offset - 1)
        else:
            text = "the stream restarted (epoch %s, history lost); going on from offset %d"
            log.warning("channel %r: " + text, state.name, pub.epoch, pub.offset - 1)
        notice = Subscribed(None, state.name, pub.offset - 1, pub.epoch, False)
        for conns in state.groups.values():
            for conn in conns:
                conn.send(notice)
        state.epoch, state.offset = pub.epoch, pub.offset - 1
    else:
        hub.gaps_repaired += 1
        for p in missing:
            hub.fan_out(state, p)
            if state.pending:
                hub.offer(state, p)
    held, state.held = state.held or [], None
    for i, event in enumerate(held):
        hub.apply(state, event)
        if state.held is not None:  # another gap: the rest waits behind its repair
            state.held.extend(held[i + 1 :])
            return
