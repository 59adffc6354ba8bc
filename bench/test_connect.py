"""Connection establishment: a 1,000-connection storm against fastcomm, and the
same storm against bare picows for reference.

Two storms. ``paced``: 1,000 connections opened at 2,000/s - a reconnect storm
one load-generator core can produce without queueing connections itself.
Gate (founding floor): every connection established, p99 < 100 ms.
``burst``: all 1,000 at once; every connection must be established. Its
latency is dominated by the single load-generator core (and the kernel work
of loopback handshakes it pays), as the bare picows run of the same burst
shows, so it is reported, not gated.
"""

from __future__ import annotations

from typing import Any

from bench.budgets import CONNECT_FLOOR_MS
from bench.harness import interleaved, median, running
from bench.profiles import Profile


def test_connection_storm(benchmark: Any, profile: Profile) -> None:
    conns = str(profile.storm_conns)
    paced = ["--scenario", "connect", "--conns", conns, "--rate", "2000"]
    burst = ["--scenario", "connect", "--conns", conns]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def storms() -> None:
        with running("fastcomm") as fastcomm, running("picows") as picows:
            results["paced"] = interleaved([fastcomm, picows], paced, profile.rounds)
            results["burst"] = interleaved([fastcomm, picows], burst, profile.rounds)

    benchmark.pedantic(storms, rounds=1, iterations=1)
    info = {
        f"{storm}_{server}_{metric}": median(runs, metric)
        for storm, by_server in results.items()
        for server, runs in by_server.items()
        for metric in ("p50_ms", "p99_ms", "server_cpu_us_per_conn", "client_cpu_pct")
    }
    benchmark.extra_info.update(info)
    for storm in ("paced", "burst"):
        print(
            f"\n{storm} storm of {conns}: p99 fastcomm {info[f'{storm}_fastcomm_p99_ms']:.1f} ms "
            f"(picows {info[f'{storm}_picows_p99_ms']:.1f} ms); server CPU/connection "
            f"fastcomm {info[f'{storm}_fastcomm_server_cpu_us_per_conn']:.0f} µs "
            f"(picows {info[f'{storm}_picows_server_cpu_us_per_conn']:.0f} µs)"
        )
    for by_server in results.values():
        for run in by_server["fastcomm"]:
            assert run["conns"] == profile.storm_conns and run["failed_conns"] == 0
    assert info["paced_fastcomm_p99_ms"] < CONNECT_FLOOR_MS
