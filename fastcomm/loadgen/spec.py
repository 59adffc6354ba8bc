"""What a load-generator worker is told to do, what it reports, and how it
synchronises with the other workers.

A run is split into :class:`WorkerSpec` shares (one per worker process). A
worker passes named *phases* (``ready``, ``measure``, ``done`` ...) through
its :class:`Sync`: every worker and the coordinator wait for each other at
each phase, and the coordinator may act there (read the server's CPU time or
memory). A worker returns a :class:`WorkerResult` of plain counters and
histograms that the coordinator merges.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import msgspec

__all__ = ["Scenario", "Sync", "WorkerResult", "WorkerSpec"]


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One worker's share of a run. ``rate`` is this worker's share (0: closed loop)."""

    scenario: str
    index: int = 0
    workers: int = 1
    url: str
    conns: int
    duration: float
    warmup: float = 0.0
    rate: float = 0.0
    size: int = 0
    encoding: str = "json"
    message: dict[str, Any] | None = None
    channel: str = "bench"
    fanout_mode: str = "channel"
    concurrency: int = 256
    timeout: float = 10.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # sent with every upgrade


class WorkerResult(msgspec.Struct, kw_only=True):
    """Counters and histograms (in :meth:`Histogram.to_wire` form) of one worker.

    Every scenario reports the counters ``opened`` (connections established),
    ``failed_conns``, ``refused_<status>``, ``closed_by_server`` and
    ``closed_<code>``, which decide whether the run measured anything.
    """

    counters: dict[str, float] = msgspec.field(default_factory=dict)
    histograms: dict[str, list[int]] = msgspec.field(default_factory=dict)
    errors: list[str] = msgspec.field(default_factory=list)


class Sync(Protocol):
    """A worker's link to the coordinator."""

    async def phase(self, name: str) -> None:
        """Wait until every worker reached phase ``name`` and the coordinator acted."""

    def watch(self, done: Callable[[], int]) -> None:
        """Report progress: ``done()`` is this worker's running count of operations."""


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """A load scenario.

    ``phases`` are the phases every worker passes, in order; ``metrics`` the
    names :attr:`summarize` returns (and ``--fail-if`` accepts); ``measured``
    the metric that counts the work done (a run where it is 0 measured nothing);
    ``summarize(results, probes)`` merges the workers' results, given
    the coordinator's probes of the server (``"<phase>.cpu"`` seconds and
    ``"<phase>.rss"`` KiB at each phase, ``start.*`` before any connection;
    present only when the server is local).
    """

    name: str
    unit: str
    measured: str
    phases: tuple[str, ...]
    metrics: tuple[str, ...]
    worker: Callable[[WorkerSpec, Sync], Coroutine[Any, Any, WorkerResult]]
    summarize: Callable[[list[WorkerResult], Mapping[str, float]], dict[str, float]]
