"""Plain HTTP GET endpoints on the WebSocket port: health, readiness, status."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from picows import WSUpgradeResponse, WSUpgradeResponseWithListener

from fastcomm.web.assets import asset, asset_paths

if TYPE_CHECKING:
    from fastcomm.server.runtime import Server as Runtime

__all__ = ["endpoints", "ok", "status_snapshot"]

Endpoint = Callable[[], WSUpgradeResponseWithListener]
_json = msgspec.json.Encoder()


def ok(
    body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> WSUpgradeResponseWithListener:
    response = WSUpgradeResponse.create_ok_response(
        body, {"Content-Type": content_type, "Cache-Control": "no-store"}
    )
    return WSUpgradeResponseWithListener(response, None)


def status_snapshot(runtime: Runtime) -> dict[str, Any]:
    """The JSON document served at ``/status``."""
    stats = runtime.stats
    return {
        "status": "ready" if runtime.accepting else "draining",
        "uptime": round(stats.uptime, 3),
        "connections": runtime.connection_count,
        "connections_total": stats.connections_total,
        "sessions": len(runtime.sessions),
        "sessions_resumable": runtime.sessions.detached_count,
        "users": len(runtime.sessions.by_user),
        "channels": runtime.channel_count(),
        "messages_in": stats.messages_in,
        "messages_out": stats.messages_out,
        "messages_by_type": runtime.routed_counts(),
        "errors": dict(stats.errors),
        "handshake_rejects": {str(k): v for k, v in stats.handshake_rejects.items()},
        "slow_consumers": stats.slow_consumers,
        "inflight_handlers": len(runtime.router.inflight),
    }


def endpoints(runtime: Runtime) -> dict[str, Endpoint]:
    """Path -> endpoint for the runtime. Other modules may add entries (``/metrics``)."""

    def healthz() -> WSUpgradeResponseWithListener:
        return ok(b"ok\n")

    def readyz() -> WSUpgradeResponseWithListener:
        if runtime.accepting:
            return ok(b"ready\n")
        response = WSUpgradeResponse.create_error_response(503, b"draining\n")
        return WSUpgradeResponseWithListener(response, None)

    def status() -> WSUpgradeResponseWithListener:
        return ok(_json.encode(status_snapshot(runtime)), "application/json")

    routes: dict[str, Endpoint] = {"/healthz": healthz, "/readyz": readyz, "/status": status}
    for path in asset_paths(demo=runtime.config.demo):
        body, content_type = asset(path, demo=True) or (b"", "")
        routes[path] = functools.partial(ok, body, content_type)
    return routes
