"""Bringing a subscription back in step: gap fills and re-subscription (client side).

Both run as background tasks of one connection *generation* of the client
(:class:`Host`); they stop without touching the subscription once it was
unsubscribed or the connection was lost (the subscription was then reset,
and the next connection recovers from its last position).

* :func:`fill_gap` fills a held subscription up to an offset with a
  ``history`` request: publications history still holds are delivered in
  order, the rest is reported as lost
  (:class:`~fastcomm.client.subscription.RecoveryFailed`), then what was held
  meanwhile is released. With ``settle`` (a subscription restored by a
  resume, whose restored top is ahead of the client) it first waits for a
  ``ping`` round trip: the server sent ``subscribed`` and the recovered
  publications before reading the ping, so they have all arrived by then,
  and only what is still missing is read from history.
* :func:`resubscribe` subscribes again on a new session with ``recover`` from
  the subscription's own last position, holding publications until the
  ``subscribed`` reply is taken. A refusal ends the subscription
  (:class:`~fastcomm.client.subscription.SubscriptionClosed`).
"""

from __future__ import annotations

import logging
from typing import Protocol

from fastcomm.client.connection import ClientConnection
from fastcomm.client.subscription import Subscription
from fastcomm.errors import ConnectionClosed, RequestFailed
from fastcomm.protocol.channel_messages import HistoryReply, HistoryRequest, Recover, Subscribe
from fastcomm.protocol.channel_messages import Subscribed as SubscribedReply
from fastcomm.protocol.messages import Ping

__all__ = ["Host", "fill_gap", "resubscribe"]

log = logging.getLogger("fastcomm.client")


class Host(Protocol):
    """What the procedures use of the client: a
    :class:`~fastcomm.client.channels.SubscribingClient`."""

    timeout: float

    async def _conn_for(self, gen: int) -> ClientConnection | None: ...

    def _owns(self, sub: Subscription, gen: int | None = None) -> bool: ...

    def _follow(self, sub: Subscription, gap: int | None) -> None: ...

    def _forget(self, sub: Subscription, reason: str) -> None: ...

    def _unsubscribe_later(self, channel: str, gen: int) -> None: ...


async def fill_gap(host: Host, sub: Subscription, gen: int, upto: int, settle: bool) -> None:
    """Fill ``sub`` (holding) up to offset ``upto``; see the module docstring."""
    gap: int | None = None if settle else upto
    epoch = sub.epoch
    try:
        conn = await host._conn_for(gen)
        if conn is None:
            return
        if settle:
            await conn.request(Ping(), host.timeout)
            if not host._owns(sub, gen):
                return
            gap = sub._release()
            if gap is None and sub.epoch == epoch and sub.offset < upto:
                sub._hold()
                gap = upto
        while gap is not None:
            since = sub.offset
            request = HistoryRequest(channel=sub.channel, since=since, limit=gap - since)
            reply = await conn.request(request, host.timeout)
            if not host._owns(sub, gen):
                return
            gap = sub._fill(reply if isinstance(reply, HistoryReply) else None, gap)
    except ConnectionClosed:
        return
    except (RequestFailed, TimeoutError) as exc:
        if not host._owns(sub, gen):
            return
        log.warning("channel %r: history request failed: %s", sub.channel, exc)
        gap = sub._release() if gap is None else sub._fill(None, gap)
        while gap is not None:
            gap = sub._fill(None, gap)


async def resubscribe(host: Host, sub: Subscription, conn: ClientConnection, gen: int) -> None:
    """Subscribe ``sub`` again on ``conn`` (a new session); see the module docstring."""
    sub._hold()
    recover = Recover(sub.offset, sub.epoch) if sub.recover and sub.epoch is not None else None
    msg = Subscribe(channel=sub.channel, recover=recover)
    try:
        reply = await conn.request(msg, host.timeout)
    except ConnectionClosed:
        return
    except (RequestFailed, TimeoutError) as exc:
        if host._owns(sub, gen):
            host._forget(sub, f"re-subscribing failed: {exc}")
            if isinstance(exc, TimeoutError):  # the server may still subscribe it
                host._unsubscribe_later(sub.channel, gen)
        return
    if not host._owns(sub, gen):
        return
    if not isinstance(reply, SubscribedReply):
        host._forget(sub, f"unexpected reply {reply!r}")
        return
    sub._apply(reply)
    host._follow(sub, sub._release())
