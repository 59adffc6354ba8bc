"""``fastcomm bench``: run one scenario and gate on thresholds.

Exit status of :func:`run_bench`: 0 when every ``--fail-if`` passed; 1 when
any was breached (each named on stderr); 2 for a usage error (one line on
stderr); 3 when the benchmark could not run or measured nothing (the server
did not start, a handshake failed or was refused, the server closed the
connections, nothing completed, a worker died; the rules are in
:mod:`fastcomm.loadgen.verdict`), whatever the thresholds say: one line on
stderr, and the report on stdout when any connection was established.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from fastcomm.errors import ConfigError
from fastcomm.loadgen.options import BenchOptions, options_from_args
from fastcomm.loadgen.progress import Progress
from fastcomm.loadgen.report import render_json, render_table
from fastcomm.loadgen.scenarios import SCENARIOS
from fastcomm.loadgen.spec import WorkerResult, WorkerSpec
from fastcomm.loadgen.summary import total
from fastcomm.loadgen.target import DEFAULT_APP, BenchError, Probe, ServerProcess
from fastcomm.loadgen.thresholds import check
from fastcomm.loadgen.verdict import close_codes, problem
from fastcomm.loadgen.workers import run_workers

__all__ = ["BREACH", "CANNOT_RUN", "USAGE_ERROR", "run_bench", "split"]

BREACH = 1
USAGE_ERROR = 2
CANNOT_RUN = 3
_PROG = "fastcomm bench"


def split(options: BenchOptions, url: str) -> list[WorkerSpec]:
    """One spec per worker process; connections and rate are shared out evenly."""
    n = options.processes
    specs = []
    for index in range(n):
        conns = options.conns // n + (1 if index < options.conns % n else 0)
        specs.append(
            WorkerSpec(
                scenario=options.scenario,
                index=index,
                workers=n,
                url=url,
                conns=conns,
                duration=options.duration,
                warmup=options.warmup,
                rate=options.rate if options.scenario == "fanout" else options.rate / n,
                size=options.size,
                encoding=options.encoding,
                message=options.message,
                channel=options.channel,
                fanout_mode=options.fanout_mode,
                concurrency=max(1, options.concurrency // n),
                timeout=options.timeout,
                headers=dict(options.headers),
            )
        )
    return specs


@contextlib.contextmanager
def _target(options: BenchOptions) -> Iterator[tuple[str, int | None]]:
    """Yield ``(url, local pid or None)``, starting the server if no --url."""
    if options.url is not None:
        yield options.url, options.server_pid
        return
    with ServerProcess(options.app or DEFAULT_APP, options.conns, options.server_args) as server:
        yield server.url, server.pid


def _notes(
    options: BenchOptions, results: list[WorkerResult], metrics: dict[str, float]
) -> list[str]:
    notes = sorted({error for result in results for error in result.errors})[:5]
    if metrics.get("client_cpu_pct", 0.0) > 90.0 * options.processes:
        notes.append(
            "the load generator was CPU-bound: throughput is a lower bound (add --processes)"
        )
    if any(result.counters.get("app_mode") for result in results):
        notes.append("fan-out used the bench app's bench_join/bench_publish (no channels)")
    return notes


def run_bench(args: argparse.Namespace) -> int:
    """Run ``fastcomm bench`` with parsed ``args``; return the exit status."""
    try:
        options = options_from_args(args)
    except ConfigError as exc:
        print(f"fastcomm: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    scenario = SCENARIOS[options.scenario]
    show = options.progress if options.progress is not None else sys.stderr.isatty()
    progress = Progress(f"fastcomm bench {scenario.name}", scenario.unit) if show else None
    probes: dict[str, float] = {}
    try:
        with _target(options) as (url, pid):
            probe = Probe(pid)
            probe.snapshot("start", probes)
            results = run_workers(
                split(options, url), lambda phase: probe.snapshot(phase, probes), progress
            )
    except (BenchError, RuntimeError, OSError) as exc:
        print(f"fastcomm: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return CANNOT_RUN
    finally:
        if progress is not None:
            progress.finish()
    metrics = scenario.summarize(results, probes)
    codes = close_codes(results)
    metrics.update({f"closed_{code}": float(n) for code, n in codes.items()})
    notes = _notes(options, results, metrics)
    reason = problem(scenario, results, metrics, options.allow_server_close)
    breaches = check(options.fail_if, metrics)
    render = render_json if options.json else render_table
    if reason is not None:
        if total(results, "opened") > 0:
            # What was seen helps to tell why; the verdict stays "could not run".
            print(render(options, url, metrics, breaches, notes, codes, reason), flush=True)
        what = "no valid measurement" if total(results, "opened") > 0 else "nothing to measure"
        print(f"fastcomm: error: {what} on {url}: {reason}", file=sys.stderr)
        return CANNOT_RUN
    print(render(options, url, metrics, breaches, notes, codes, None), flush=True)
    for breach in breaches:
        print(f"{_PROG}: threshold breached: {breach.describe()}", file=sys.stderr)
    return BREACH if breaches else 0
