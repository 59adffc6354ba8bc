"""The node's sweep: the periodic work of a node, off the per-message path.

Once per period it refills rate buckets, pings idle peers and drops dead
ones; every third of ``presence_ttl`` it keeps this node's presence records
alive; every ``session_checkpoint``, its sessions' records (with their
current positions); every third of ``node_ttl``, its entry in the node
registry; with ``--workers``, the other workers' snapshots
(:mod:`fastcomm.node.workers`); and after the broker came back from an outage, it writes its
presence members and session records again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fastcomm.errors import CloseCode

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["sweep"]

log = logging.getLogger("fastcomm.server")


async def sweep(node: Node) -> None:
    """Once per period: refill rate buckets, ping idle peers, drop dead ones; every
    third of ``presence_ttl``, keep this node's presence records alive; every
    ``session_checkpoint``, its sessions' records; every third of ``node_ttl``,
    its entry in the node registry."""
    config = node.config
    period = min(1.0, config.heartbeat / 4, config.heartbeat_timeout / 4)
    period = min(period, config.presence_ttl / 4)
    checkpoint = min(config.session_checkpoint, config.session_ttl / 3 or 1.0)
    period = min(period, checkpoint / 2, config.node_ttl / 6)
    start = time.monotonic()
    reconnects = node.channels.broker.reconnects
    keep_presence_at = start + config.presence_ttl / 3
    checkpoint_at, announce_at = start + checkpoint, start + config.node_ttl / 3
    refill, burst = config.rate_limit * period, float(config.rate_burst)
    frame_refill, frame_burst = node.frame_rate * period, node.frame_burst
    while True:
        await asyncio.sleep(period)
        now = time.monotonic()
        for conn in list(node.connections):
            if conn.closed:
                continue
            if conn.rate_tokens < burst:
                conn.rate_tokens = min(burst, conn.rate_tokens + refill)
            if conn.frame_tokens < frame_burst:
                conn.frame_tokens = min(frame_burst, conn.frame_tokens + frame_refill)
            if conn.seen:
                conn.seen, conn.idle, conn.ping_sent = False, 0.0, 0.0
                continue
            conn.idle += period
            if conn.ping_sent:
                if now - conn.ping_sent > config.heartbeat_timeout:
                    conn.close(CloseCode.GOING_AWAY, "heartbeat timeout")
                    conn.transport.abort()
            elif conn.idle >= config.heartbeat and conn.transport.ping():
                conn.ping_sent = now
        handle = node.channels.broker
        if handle.reconnects != reconnects:  # the broker is back, perhaps empty
            reconnects = handle.reconnects
            node.router.spawn(node.channels.restore_presence())
            if config.session_ttl > 0:
                node.router.spawn(node.records.rewrite())
        if now >= keep_presence_at:
            keep_presence_at = now + config.presence_ttl / 3
            node.router.spawn(node.channels.keep_presence())
        if now >= checkpoint_at:
            checkpoint_at = now + checkpoint
            node.router.spawn(node.records.checkpoint())
        if now >= announce_at:
            announce_at = now + config.node_ttl / 3
            node.router.spawn(node.cluster.announce(node.api.node_info()))
        node.workers.refresh()
        node.memory.check(node.stats.slow_consumers, node.outbound.paused)
