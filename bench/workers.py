"""``fastcomm serve --workers 2`` against ``--workers 1``, both on Redis, same run.

For each round and each worker count, starts the bundled bench app with the
Redis broker (a redis-server of its own), waits until every worker reports in
``/status``, runs ``fastcomm bench`` (rpc, then fanout) against its port and
reads the workers' CPU time from ``/proc`` (the pids ``/status`` lists).
Prints the medians over the rounds, one line per scenario and worker count::

    PYTHONPATH=. python3 bench/workers.py --rounds 3 --duration 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

from fastcomm.loadgen.target import ChildServer, free_port

SCENARIOS = {
    "rpc": ["--scenario", "rpc", "--conns", "64"],
    "fanout": ["--scenario", "fanout", "--conns", "1000", "--rate", "50"],
}
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _pids(port: int, workers: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            found = _status(port)
            lines = found.get("workers") or [found]
            if len(lines) == workers:
                return [int(line["pid"]) for line in lines]
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{workers} workers did not all report in /status")


def measure(redis_url: str, workers: int, scenario: str, duration: str) -> dict[str, float]:
    command = [
        sys.executable, "-m", "fastcomm", "serve", "fastcomm.loadgen.app:app",
        "--port", "{port}", "--broker", redis_url, "--workers", str(workers),
        "--rate-limit", "1e9", "--rate-burst", "1000000000", "--log-level", "warning",
    ]  # fmt: skip
    with ChildServer(command, name=f"--workers {workers}", ready="/readyz") as server:
        pids = _pids(server.port, workers)
        time.sleep(1.0)  # every worker has gathered the others once
        before, started = _cpu(pids), time.monotonic()
        bench = [sys.executable, "-m", "fastcomm", "bench", "--url", server.url, "--json"]
        done = subprocess.run(
            [*bench, "--no-progress", "--duration", duration, *SCENARIOS[scenario]],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        cpu, seconds = _cpu(pids) - before, time.monotonic() - started
    metrics: dict[str, float] = json.loads(done.stdout)["metrics"]
    metrics["server_cpu_pct"] = 100 * cpu / seconds  # of one core, warm-up included
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="5")
    args = parser.parse_args()
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for round_ in range(args.rounds):
            for scenario in SCENARIOS:
                order = (1, 2) if round_ % 2 == 0 else (2, 1)
                for workers in order:
                    found = measure(url, workers, scenario, args.duration)
                    print(scenario, workers, json.dumps(found), file=sys.stderr)
                    results.setdefault((scenario, workers), []).append(found)
        # fanout reports no client CPU: 0 there
        keys = ("throughput", "p50_ms", "p99_ms", "client_cpu_pct", "server_cpu_pct")
        print("scenario workers " + " ".join(keys))
        for (scenario, workers), runs in sorted(results.items()):
            medians = [statistics.median(run.get(key, 0.0) for run in runs) for key in keys]
            print(f"{scenario} {workers} " + " ".join(f"{value:.1f}" for value in medians))
    finally:
        redis.terminate()
        redis.wait()


if __name__ == "__main__":
    main()
