"""Fan-out of each publication to 1,000 subscribers: fastcomm channels vs a bare
picows loop (``bench_publish`` of the picows baseline: encode once, send to each).

Gate: median server CPU per delivery <= FANOUT_CPU_RATIO x the bare loop's,
every publication delivered to every subscriber.
"""

from __future__ import annotations

from typing import Any

from bench.budgets import FANOUT_CPU_RATIO
from bench.harness import loadgen, median, running
from bench.profiles import Profile

RATE = "50"  # publications/s: 50,000 deliveries/s, well within both servers and the client


def test_fanout_server_cpu_per_delivery(benchmark: Any, profile: Profile) -> None:
    common = [
        "--scenario", "fanout", "--conns", str(profile.fanout_subscribers), "--rate", RATE,
        "--duration", str(profile.seconds), "--warmup", str(profile.warmup), "--size", "64",
    ]  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {"fastcomm": [], "picows": []}

    def rounds() -> None:
        with running("fastcomm") as fastcomm, running("picows") as picows:
            for n in range(profile.rounds):
                order = [(fastcomm, "channel"), (picows, "app")]
                for server, mode in order if n % 2 == 0 else order[::-1]:
                    runs[server.name].append(loadgen(server, *common, "--fanout-mode", mode))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    ours = median(runs["fastcomm"], "server_cpu_us_per_delivery")
    bare = median(runs["picows"], "server_cpu_us_per_delivery")
    ratio = ours / bare
    benchmark.extra_info.update(
        fastcomm_cpu_us_per_delivery=ours,
        picows_cpu_us_per_delivery=bare,
        ratio=ratio,
        fastcomm_p99_ms=median(runs["fastcomm"], "p99_ms"),
        picows_p99_ms=median(runs["picows"], "p99_ms"),
    )
    print(
        f"\nfan-out server CPU/delivery: fastcomm {ours:.3f} µs, picows loop {bare:.3f} µs, "
        f"ratio {ratio:.3f} (gate {FANOUT_CPU_RATIO}); p99 fastcomm "
        f"{benchmark.extra_info['fastcomm_p99_ms']:.2f} ms"
    )
    for run in runs["fastcomm"]:
        assert run["subscribers"] == profile.fanout_subscribers
        assert run["lost"] == 0 and run["closed_by_server"] == 0
    assert ratio <= FANOUT_CPU_RATIO, f"fan-out CPU per delivery is {ratio:.3f}x a bare loop"
