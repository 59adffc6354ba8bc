"""The node's status document (``/status``, the HTTP API's ``info``).

A worker of ``--workers`` describes the whole server: its own figures
summed with the other workers' last snapshots (:mod:`fastcomm.node.workers`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["broker_state", "own_status", "status_snapshot"]


def own_status(node: Node) -> dict[str, Any]:
    """This node's own figures (what a worker sends the others)."""
    stats = node.stats
    hub = node.channels.hub
    return {
        "status": "ready" if node.accepting else "draining",
        "worker": node.config.worker_id,
        "pid": os.getpid(),
        "uptime": round(stats.uptime, 3),
        "connections": len(node.connections),
        "connections_total": stats.connections_total,
        "sessions": len(node.sessions),
        "sessions_resumable": node.sessions.stored(),
        "users": len(node.sessions.by_user),
        "channels": hub.count(),
        "channel_subscribers": sum(hub.subscribers(name) for name in list(hub.channels)),
        "messages_in": stats.messages_in,
        "messages_out": stats.messages_out,
        "messages_by_type": node.routed_counts(),
        "errors": dict(stats.errors),
        "handshake_rejects": {str(k): v for k, v in stats.handshake_rejects.items()},
        "handshake_incomplete": stats.handshake_incomplete,
        "slow_consumers": stats.slow_consumers,
        "inflight_handlers": len(node.router.inflight),
        "broker": broker_state(node.broker),
    }


def status_snapshot(node: Node) -> dict[str, Any]:
    """The JSON document served at ``/status``: :func:`own_status`, or for a
    worker, the whole server's (see :meth:`Workers.merged`)."""
    return node.workers.merged(own_status(node))


def broker_state(broker: object) -> dict[str, Any]:
    """``up`` (False while a networked broker is unreachable) and ``outages`` so far;
    the memory broker is always up."""
    return {"up": bool(getattr(broker, "up", True)), "outages": getattr(broker, "outages", 0)}
