"""Cost of the metrics bookkeeping: < 5 % of throughput.

What metrics add per message is the routing-latency sampling in
``Router.dispatch`` (the counters existed before). Its cost is timed in
process, stock ``dispatch`` against the same function without the sampling
(``bench/baselines/fastcomm_unmetered.py``), in alternation, and divided by
the server CPU per round trip measured end to end in the same run: the share
of a saturated server's capacity, i.e. of its throughput, that metrics take.
A ``/metrics`` scrape is timed too and counted at one scrape per second
(Prometheus' default is one per 15 s).

The direct end-to-end comparison (stock server vs unmetered server) is
reported as well; on a shared 2-core machine its run-to-run noise (+-15 %)
is larger than the effect, so it is not the gate.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import generate_latest

from bench.baselines.fastcomm_unmetered import dispatch_without_metrics
from bench.budgets import METRICS_COST
from bench.harness import interleaved, median, running
from bench.inprocess import fake_connection, interleaved_timing, server
from bench.profiles import Profile
from fastcomm.http.metrics import NodeCollector

PAYLOAD = b'{"type":"echo","id":7,"data":"' + b"x" * 64 + b'"}'


def _scrape_seconds(srv: Any, repeat: int) -> float:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(srv))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def test_metrics_cost(benchmark: Any, profile: Profile) -> None:
    srv = server()
    conn = fake_connection(srv)
    router = srv.router

    def metered() -> None:
        router.dispatch(conn, PAYLOAD)

    def unmetered() -> None:
        dispatch_without_metrics(router, conn, PAYLOAD)

    timing = interleaved_timing(
        {"metered": metered, "unmetered": unmetered}, profile.number, profile.repeat * 2
    )
    hook = max(0.0, timing["metered"] - timing["unmetered"])
    scrape = _scrape_seconds(srv, profile.repeat)
    args = [
        "--scenario", "rpc", "--conns", str(profile.rpc_conns), "--duration",
        str(profile.seconds), "--warmup", str(profile.warmup), "--message", '{"type":"echo"}',
    ]  # fmt: skip
    with running("fastcomm") as stock, running("fastcomm-unmetered") as plain:
        runs = benchmark.pedantic(
            interleaved, args=([stock, plain], args, profile.rounds), rounds=1, iterations=1
        )
    per_message = median(runs["fastcomm"], "server_cpu_us_per_req") * 1e-6
    cost = hook / per_message + scrape  # scrape: seconds of CPU per second, at 1 scrape/s
    direct = per_message / (median(runs["fastcomm-unmetered"], "server_cpu_us_per_req") * 1e-6)
    benchmark.extra_info.update(
        hook_ns=hook * 1e9, scrape_us=scrape * 1e6, cpu_us_per_req=per_message * 1e6,
        cost=cost, direct_e2e_ratio=direct,
    )  # fmt: skip
    print(
        f"\nmetrics: sampling hook {hook * 1e9:.0f} ns/message on {per_message * 1e6:.2f} µs "
        f"server CPU per round trip; scrape {scrape * 1e6:.0f} µs; cost {cost * 100:.2f} % "
        f"(gate {METRICS_COST * 100:.0f} %); direct e2e CPU ratio {direct:.3f} (noisy, info)"
    )
    assert cost < METRICS_COST
