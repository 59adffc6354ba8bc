"""``GET /metrics``: the node's counters in the Prometheus text format.

Nothing here runs on the message path. The hot path only bumps plain
integers (:class:`~fastcomm.stats.Stats`, the router's per-type counts
and its sampled latency buckets); :class:`NodeCollector` reads them when
Prometheus scrapes, through a registry private to the node (two servers in
one process do not share metrics).

Exported (``_total`` is added to counters by the format):

- ``fastcomm_open_connections``, ``fastcomm_connections_total``
- ``fastcomm_sessions``, ``fastcomm_sessions_resumable``, ``fastcomm_users``
- ``fastcomm_messages_received_total`` (every whole message),
  ``fastcomm_messages_routed_total{type}`` (by request type),
  ``fastcomm_messages_sent_total``
- ``fastcomm_errors_total{code}`` (error replies by code, and close codes)
- ``fastcomm_handshake_rejects_total{status}``, ``fastcomm_handshake_incomplete_total``
  (connections gone before their upgrade request was seen)
- ``fastcomm_slow_consumers_total`` (outbound buffer overflows, close 4008)
- ``fastcomm_channels``, ``fastcomm_channel_subscribers``
- ``fastcomm_inflight_handlers``, ``fastcomm_uptime_seconds``
- ``fastcomm_broker_up`` (0 while a networked broker is unreachable)
- ``fastcomm_routing_latency_seconds`` (histogram of one message in
  ``router.sample_every``: decode, validation, handler, reply; with
  ``--workers``, of the worker that answers the scrape)

With ``--workers`` the other families sum every worker's figures (as
gathered by :mod:`fastcomm.node.workers`, up to about a second old), and
``fastcomm_workers`` and ``fastcomm_worker_open_connections{worker}`` are
added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from fastcomm.http.types import Request, Response
from fastcomm.node.status import status_snapshot

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["NodeCollector", "metrics_endpoint"]


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class NodeCollector(Collector):
    """Builds every fastcomm metric family at scrape time from ``node``'s status
    figures (:func:`~fastcomm.node.status.status_snapshot`: plain counters; for a
    worker of ``--workers``, summed over the whole server)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        now = status_snapshot(node)
        yield _gauge("fastcomm_open_connections", "Open WebSocket connections.",
                     now["connections"])  # fmt: skip
        yield _counter("fastcomm_connections", "WebSocket connections accepted.",
                       now["connections_total"])  # fmt: skip
        yield _gauge("fastcomm_sessions", "Live sessions.", now["sessions"])
        stored = now["sessions_resumable"]
        if stored is not None:  # a store that cannot count its records has no gauge
            text = "Session records in the store (live sessions' included)."
            yield _gauge("fastcomm_sessions_resumable", text, stored)
        yield _gauge("fastcomm_users", "Distinct users with a live session.", now["users"])
        yield _counter("fastcomm_messages_received", "Whole messages received.",
                       now["messages_in"])  # fmt: skip
        routed = CounterMetricFamily(
            "fastcomm_messages_routed", "Messages routed, by request type.", labels=("type",)
        )
        for kind, count in sorted(now["messages_by_type"].items()):
            routed.add_metric((kind,), count)
        yield routed
        yield _counter("fastcomm_messages_sent", "Messages sent.", now["messages_out"])
        errors = CounterMetricFamily(
            "fastcomm_errors", "Error replies by code, and closes by close code.", labels=("code",)
        )
        for code, count in sorted(now["errors"].items()):
            errors.add_metric((code,), count)
        yield errors
        rejects = CounterMetricFamily(
            "fastcomm_handshake_rejects", "Upgrades refused, by HTTP status.", labels=("status",)
        )
        for status, count in sorted(now["handshake_rejects"].items()):
            rejects.add_metric((status,), count)
        yield rejects
        yield _counter("fastcomm_handshake_incomplete",
                       "Connections gone before their upgrade request was seen.",
                       now["handshake_incomplete"])  # fmt: skip
        yield _counter("fastcomm_slow_consumers",
                       "Connections closed because their outbound buffer overflowed.",
                       now["slow_consumers"])  # fmt: skip
        yield _gauge("fastcomm_channels", "Channels with at least one subscriber.",
                     now["channels"])  # fmt: skip
        yield _gauge("fastcomm_channel_subscribers", "Subscriptions to channels on this node.",
                     now["channel_subscribers"])  # fmt: skip
        yield _gauge("fastcomm_inflight_handlers", "Async handlers still running.",
                     now["inflight_handlers"])  # fmt: skip
        yield _gauge("fastcomm_uptime_seconds", "Seconds since the node started.",
                     node.stats.uptime)  # fmt: skip
        yield _gauge("fastcomm_broker_up", "1 while the broker is reachable, else 0.",
                     float(now["broker"]["up"]))  # fmt: skip
        yield self._routing_latency()
        if "workers" in now:
            yield from _per_worker(now["workers"])

    def _routing_latency(self) -> HistogramMetricFamily:
        router = self.node.router
        counts = list(router.latency_counts)
        bounds = [f"{bound:g}" for bound in router.latency_bounds] + ["+Inf"]
        buckets = list(zip(bounds, accumulate(counts), strict=True))
        return HistogramMetricFamily(
            "fastcomm_routing_latency_seconds",
            f"Time to decode, validate and route a message (1 in {router.sample_every} sampled).",
            buckets=buckets,
            sum_value=router.latency_sum,
        )


def _per_worker(lines: list[dict[str, Any]]) -> Iterator[Metric]:
    yield _gauge("fastcomm_workers", "Workers whose figures this answer includes.", len(lines))
    open_now = GaugeMetricFamily(
        "fastcomm_worker_open_connections", "Open connections, by worker.", labels=("worker",)
    )
    for line in lines:
        open_now.add_metric((str(line["worker"]),), line["connections"])
    yield open_now


def metrics_endpoint(node: Node) -> Callable[[Request], Response]:
    """The ``GET /metrics`` endpoint of ``node`` (Prometheus text format 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))

    def metrics(request: Request) -> Response:
        return Response(200, generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4)

    return metrics
