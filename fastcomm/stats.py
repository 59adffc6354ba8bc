"""Plain counters updated on the hot path and read by ``/status`` and ``/metrics``.

Counting is an integer increment on a slotted object; exporting (JSON or
Prometheus) happens only when someone asks.
"""

from __future__ import annotations

import time

__all__ = ["OutboundBudget", "Stats"]


class Stats:
    """Process-wide counters. Connection and session gauges live in the registries."""

    __slots__ = (
        "connections_total",
        "errors",
        "handshake_incomplete",
        "handshake_rejects",
        "messages_in",
        "messages_out",
        "slow_consumers",
        "started",
    )

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.connections_total = 0
        self.messages_in = 0
        self.messages_out = 0
        self.errors: dict[str, int] = {}  # error code or close code -> count
        self.handshake_rejects: dict[int, int] = {}  # HTTP status -> count
        # Connections gone before their upgrade request was seen (malformed, oversized,
        # timed out or abandoned); the transport may have answered them itself.
        self.handshake_incomplete = 0
        self.slow_consumers = 0

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def reject(self, status: int) -> None:
        self.handshake_rejects[status] = self.handshake_rejects.get(status, 0) + 1

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started


class OutboundBudget:
    """Unsent bytes allowed over all connections (``total``), shared by those whose
    transport is paused (``paused`` of them): each may hold ``total // paused``
    when that is less than its own limit."""

    __slots__ = ("paused", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.paused = 0

    def limit(self, own: int) -> int:
        """The outbound limit of one paused connection whose own limit is ``own``."""
        paused = self.paused
        if paused and paused * own > self.total:
            return self.total // paused
        return own
