"""Memory per idle connection: N connections held by one fastcomm process.

Gate: server RSS growth / N <= IDLE_KIB_PER_CONN (12 KiB; picows' defaults
cost ~28 KiB). The full profile holds 10,000 connections.
"""

from __future__ import annotations

from typing import Any

from bench.budgets import IDLE_KIB_PER_CONN
from bench.harness import loadgen, running
from bench.profiles import Profile


def test_idle_memory_per_connection(benchmark: Any, profile: Profile) -> None:
    args = ["--scenario", "idle", "--conns", str(profile.idle_conns), "--duration", "1"]
    with running("fastcomm") as fastcomm:
        run = benchmark.pedantic(loadgen, args=(fastcomm, *args), rounds=1, iterations=1)
    benchmark.extra_info.update(
        rss_per_conn_kib=run["rss_per_conn_kib"], server_rss_kib=run["server_rss_kib"]
    )
    print(f"\nidle: {run['conns']:.0f} connections, {run['rss_per_conn_kib']:.2f} KiB each")
    assert run["conns"] == profile.idle_conns and run["dropped"] == 0
    assert run["rss_per_conn_kib"] <= IDLE_KIB_PER_CONN
