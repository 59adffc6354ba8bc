"""End-to-end request/reply over real sockets: fastcomm vs bare picows + msgspec.

Both servers run as subprocesses pinned to one core, the load generator on
the other; rounds alternate between them. Gate: median server CPU per round
trip <= RPC_CPU_RATIO x the bare server's; hard floor: p99 < 10 ms.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.budgets import ROUTE_FLOOR_S, RPC_CPU_RATIO
from bench.harness import interleaved, median, running
from bench.profiles import Profile

MESSAGE = '{"type":"echo"}'


def test_rpc_server_cpu_per_round_trip(benchmark: Any, profile: Profile) -> None:
    args = [
        "--scenario", "rpc", "--conns", str(profile.rpc_conns), "--duration",
        str(profile.seconds), "--warmup", str(profile.warmup), "--message", MESSAGE,
        "--size", "64",
    ]  # fmt: skip
    with running("fastcomm") as fastcomm, running("picows") as picows:
        runs = benchmark.pedantic(
            interleaved, args=([fastcomm, picows], args, profile.rounds), rounds=1, iterations=1
        )
    ours = median(runs["fastcomm"], "server_cpu_us_per_req")
    bare = median(runs["picows"], "server_cpu_us_per_req")
    # Rounds are paired (run back to back, order alternating): the median of the
    # per-round ratios cancels the drift of a shared machine that the ratio of the
    # two medians keeps.
    ratio = statistics.median(
        a["server_cpu_us_per_req"] / b["server_cpu_us_per_req"]
        for a, b in zip(runs["fastcomm"], runs["picows"], strict=True)
    )
    p99 = median(runs["fastcomm"], "p99_ms")
    benchmark.extra_info.update(
        fastcomm_cpu_us_per_req=ours,
        picows_cpu_us_per_req=bare,
        ratio=ratio,
        fastcomm_throughput=median(runs["fastcomm"], "throughput"),
        picows_throughput=median(runs["picows"], "throughput"),
        fastcomm_p99_ms=p99,
    )
    print(
        f"\nrpc server CPU/round trip: fastcomm {ours:.2f} µs, picows {bare:.2f} µs, "
        f"ratio {ratio:.3f} (gate {RPC_CPU_RATIO}); fastcomm p99 {p99:.2f} ms"
    )
    for run in runs["fastcomm"]:
        assert run["errors"] == 0 and run["failed_conns"] == 0
    assert p99 < ROUTE_FLOOR_S * 1000
    assert ratio <= RPC_CPU_RATIO, f"server CPU per round trip is {ratio:.3f}x bare picows"
