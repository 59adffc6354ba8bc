"""``GET /metrics``: the server's counters in the Prometheus text format.

Nothing here runs on the message path. The hot path only bumps plain
integers (:class:`~fastcomm.server.stats.Stats`, the router's per-type counts
and its sampled latency buckets); :class:`ServerCollector` reads them when
Prometheus scrapes, through a registry private to the server (two servers in
one process do not share metrics).

Exported (``_total`` is added to counters by the format):

- ``fastcomm_open_connections``, ``fastcomm_connections_total``
- ``fastcomm_sessions``, ``fastcomm_sessions_resumable``, ``fastcomm_users``
- ``fastcomm_messages_received_total`` (every whole message),
  ``fastcomm_messages_routed_total{type}`` (by request type),
  ``fastcomm_messages_sent_total``
- ``fastcomm_errors_total{code}`` (error replies by code, and close codes)
- ``fastcomm_handshake_rejects_total{status}``
- ``fastcomm_slow_consumers_total`` (outbound buffer overflows, close 4008)
- ``fastcomm_channels``, ``fastcomm_channel_subscribers``
- ``fastcomm_inflight_handlers``, ``fastcomm_uptime_seconds``
- ``fastcomm_routing_latency_seconds`` (histogram of one message in
  ``router.sample_every``: decode, validation, handler, reply)
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from picows import WSUpgradeResponseWithListener
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from fastcomm.server.http import ok

if TYPE_CHECKING:
    from fastcomm.server.runtime import Server

__all__ = ["ServerCollector", "install_metrics"]


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _subscribers(server: Server) -> int:
    hub: Any = getattr(getattr(server, "channels", None), "hub", None)
    if hub is None:
        return 0
    return sum(hub.subscribers(name) for name in list(hub.channels))


class ServerCollector(Collector):
    """Builds every fastcomm metric family from ``server``'s counters at scrape time."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        stats = server.stats
        yield _gauge("fastcomm_open_connections", "Open WebSocket connections.",
                     server.connection_count)  # fmt: skip
        yield _counter("fastcomm_connections", "WebSocket connections accepted.",
                       stats.connections_total)  # fmt: skip
        yield _gauge("fastcomm_sessions", "Live sessions.", len(server.sessions))
        yield _gauge("fastcomm_sessions_resumable", "Detached sessions that can be resumed.",
                     server.sessions.detached_count)  # fmt: skip
        yield _gauge("fastcomm_users", "Distinct users with a live session.",
                     len(server.sessions.by_user))  # fmt: skip
        yield _counter("fastcomm_messages_received", "Whole messages received.",
                       stats.messages_in)  # fmt: skip
        routed = CounterMetricFamily(
            "fastcomm_messages_routed", "Messages routed, by request type.", labels=("type",)
        )
        for kind, count in sorted(server.routed_counts().items()):
            routed.add_metric((kind,), count)
        yield routed
        yield _counter("fastcomm_messages_sent", "Messages sent.", stats.messages_out)
        errors = CounterMetricFamily(
            "fastcomm_errors", "Error replies by code, and closes by close code.", labels=("code",)
        )
        for code, count in sorted(dict(stats.errors).items()):
            errors.add_metric((code,), count)
        yield errors
        rejects = CounterMetricFamily(
            "fastcomm_handshake_rejects", "Upgrades refused, by HTTP status.", labels=("status",)
        )
        for status, count in sorted(dict(stats.handshake_rejects).items()):
            rejects.add_metric((str(status),), count)
        yield rejects
        yield _counter("fastcomm_slow_consumers",
                       "Connections closed because their outbound buffer overflowed.",
                       stats.slow_consumers)  # fmt: skip
        yield _gauge("fastcomm_channels", "Channels with at least one subscriber.",
                     server.channel_count())  # fmt: skip
        yield _gauge("fastcomm_channel_subscribers", "Subscriptions to channels on this node.",
                     _subscribers(server))  # fmt: skip
        yield _gauge("fastcomm_inflight_handlers", "Async handlers still running.",
                     len(server.router.inflight))  # fmt: skip
        yield _gauge("fastcomm_uptime_seconds", "Seconds since the server started.",
                     stats.uptime)  # fmt: skip
        yield self._routing_latency()

    def _routing_latency(self) -> HistogramMetricFamily:
        router = self.server.router
        counts = list(router.latency_counts)
        bounds = [f"{bound:g}" for bound in router.latency_bounds] + ["+Inf"]
        buckets = list(zip(bounds, accumulate(counts), strict=True))
        return HistogramMetricFamily(
            "fastcomm_routing_latency_seconds",
            f"Time to decode, validate and route a message (1 in {router.sample_every} sampled).",
            buckets=buckets,
            sum_value=router.latency_sum,
        )


def install_metrics(server: Server) -> None:
    """Serve ``GET /metrics`` on ``server``'s port (Prometheus text format 0.0.4).

    Safe to call before the server starts; calling it again replaces the endpoint.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))

    def metrics() -> WSUpgradeResponseWithListener:
        return ok(generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4)

    server.http["/metrics"] = metrics
