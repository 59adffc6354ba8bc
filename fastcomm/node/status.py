"""The node's status document (``/status``, the HTTP API's ``info``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["broker_state", "status_snapshot"]


def status_snapshot(node: Node) -> dict[str, Any]:
    """The JSON document served at ``/status``."""
    stats = node.stats
    return {
        "status": "ready" if node.accepting else "draining",
        "uptime": round(stats.uptime, 3),
        "connections": len(node.connections),
        "connections_total": stats.connections_total,
        "sessions": len(node.sessions),
        "sessions_resumable": node.sessions.stored(),
        "users": len(node.sessions.by_user),
        "channels": node.channels.hub.count(),
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


def broker_state(broker: object) -> dict[str, Any]:
    """``up`` (False while a networked broker is unreachable) and ``outages`` so far;
    the memory broker is always up."""
    return {"up": bool(getattr(broker, "up", True)), "outages": getattr(broker, "outages", 0)}
