"""HTTP publish over keep-alive: fastcomm's HTTP API against a bare granian endpoint.

    PYTHONPATH=. python3 bench/http_publish.py                 # 5 rounds x 3 s
    PYTHONPATH=. python3 bench/http_publish.py --rounds 7 --duration 5

Both servers run at once, pinned to core 0; the client (``--conns`` threads,
one keep-alive ``http.client`` connection each, ``POST /api/publish``) runs in
a child process pinned to core 1; rounds alternate the order. Reported:
requests/s and server CPU per request (the server's whole process tree), as
medians, and the CPU ratio. fastcomm serves the API with embedded granian on
the picows transport's event loop (``fastcomm serve --api-key K --api-port P``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastcomm.loadgen.target import ChildServer, Probe, free_port

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
BODY = json.dumps({"channel": "bench", "data": {"text": "x" * 40}}).encode()


def client(port: int, conns: int, seconds: float) -> int:
    """POST ``BODY`` from ``conns`` threads for ``seconds``; return requests answered 200."""
    done = [0] * conns
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        while time.monotonic() < stop:
            conn.request("POST", "/api/publish", BODY, headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            done[i] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


def measure(pid: int, port: int, conns: int, seconds: float) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) of one run against ``port``."""
    probe = Probe(pid)
    cpu = probe.cpu_seconds()
    start = time.monotonic()
    out = subprocess.run(
        ["taskset", "-c", "1", sys.executable, __file__, "--client", str(port), str(conns),
         str(seconds)],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    elapsed = time.monotonic() - start
    used = probe.cpu_seconds() - cpu
    requests = int(out.stdout.strip())
    if requests == 0:
        raise RuntimeError("no request completed")
    return requests / min(elapsed, seconds), used / requests * 1e6


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        print(client(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--conns", type=int, default=8)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    env["PYTHONPATH"] = str(ROOT)
    api_port = free_port()
    ours = ChildServer(
        ["taskset", "-c", "0", sys.executable, "-m", "fastcomm", "serve", "--port", "{port}",
         "--api-key", KEY, "--api-port", str(api_port), "--log-level", "warning"],
        name="fastcomm", env=env, cwd=ROOT,
    )  # fmt: skip
    bare = ChildServer(
        ["taskset", "-c", "0", sys.executable, "bench/baselines/granian_rsgi_json.py", "{port}"],
        name="granian-rsgi", env=env, cwd=ROOT,
    )  # fmt: skip
    results: dict[str, list[tuple[float, float]]] = {"fastcomm": [], "granian": []}
    with ours, bare:
        time.sleep(1.0)
        targets = {"fastcomm": (ours.pid, api_port), "granian": (bare.pid, bare.port)}
        for n in range(args.rounds):
            order = list(targets) if n % 2 == 0 else list(reversed(targets))
            for name in order:
                pid, port = targets[name]
                results[name].append(measure(pid, port, args.conns, args.duration))
    rate = {k: statistics.median(r for r, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    print("| server | requests/s | server CPU per request | ratio |")
    print("|---|---:|---:|---:|")
    for name in ("fastcomm", "granian"):
        ratio = cpu[name] / cpu["granian"]
        print(f"| {name} | {rate[name]:,.0f} | {cpu[name]:.1f} µs | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
