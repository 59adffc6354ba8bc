"""A/B of two source trees of fastcomm on the same machine, in the same run.

    git worktree add /tmp/old <commit>
    python3 bench/ab_trees.py /tmp/old .              # both measures, 6 rounds
    python3 bench/ab_trees.py /tmp/old /tmp/old       # the null A/B: the noise

Two measures, each tree's code imported by its own processes (``PYTHONPATH``):

- ``route``: the in-process message path (``bench/inprocess.py``: admission,
  router, handler, reply encoding, ``send_encoded``; no system calls) of a
  64-byte ``echo`` and of a ``ping``, the minimum over 15 repeats of 20,000
  messages, one process per tree and round. The minimum is what the code
  costs; neighbours only ever add to it.
- ``rpc``: both trees' servers up at once (pinned to core 0), the load
  generator (core 1) against each in turn, order alternating per round,
  server CPU per round trip; the median of the per-round ratios.

On a shared machine the rpc figure of one tree spreads widely between rounds
(run the null A/B to see by how much); the route minimum is the steadier one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

_ROUTE = """
import gc, sys, timeit
from bench.inprocess import fake_connection, server
node = server()
conn = fake_connection(node)
receive = node.receive
result = []
for payload in (b'{"type":"echo","id":1,"data":"' + b"x" * 64 + b'"}', b'{"type":"ping","id":1}'):
    gc.disable()
    best = min(timeit.repeat(lambda: receive(conn, False, payload), number=20000, repeat=15))
    result.append(best / 20000 * 1e9)
print(*result)
"""


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def route(tree: Path) -> tuple[float, float]:
    """(echo ns, ping ns) per message in ``tree``."""
    out = subprocess.run(
        ["taskset", "-c", "1", sys.executable, "-c", _ROUTE],
        cwd=tree, env=_env(tree), capture_output=True, text=True, check=True,
    )  # fmt: skip
    echo, ping = map(float, out.stdout.split())
    return echo, ping


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tree: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        "taskset", "-c", "0", sys.executable, "-m", "fastcomm", "serve",
        "fastcomm.loadgen.app:app", "--port", str(port), "--rate-limit", "1e9",
        "--rate-burst", "1000000000", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=tree, env=_env(tree))


def rpc_round(tree: Path, port: int, pid: int, duration: float) -> float:
    """Server CPU µs per round trip of one loadgen run against the server at ``port``."""
    command = [
        "taskset", "-c", "1", sys.executable, "-m", "fastcomm.loadgen",
        "--url", f"ws://127.0.0.1:{port}/ws", "--server-pid", str(pid), "--scenario", "rpc",
        "--conns", "64", "--duration", str(duration), "--warmup", "0.5",
        "--message", '{"type":"echo"}', "--json",
    ]  # fmt: skip
    out = subprocess.run(command, cwd=tree, env=_env(tree), capture_output=True, text=True)
    return float(json.loads(out.stdout)["metrics"]["server_cpu_us_per_req"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("a", type=Path, help="tree A (the baseline)")
    parser.add_argument("b", type=Path, help="tree B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}

    echo: dict[str, list[float]] = {"A": [], "B": []}
    ping: dict[str, list[float]] = {"A": [], "B": []}
    for n in range(args.rounds):
        for name in ("A", "B") if n % 2 == 0 else ("B", "A"):
            e, p = route(trees[name])
            echo[name].append(e)
            ping[name].append(p)
    for label, data in (("echo", echo), ("ping", ping)):
        a, b = min(data["A"]), min(data["B"])
        print(f"route {label}: A {a:.0f} ns, B {b:.0f} ns, B/A {b / a:.3f} (minimum per tree)")

    ports = {name: _free_port() for name in trees}
    servers = {name: _serve(tree, ports[name]) for name, tree in trees.items()}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    try:
        time.sleep(3.0)
        for n in range(args.rounds):
            for name in ("A", "B") if n % 2 == 0 else ("B", "A"):
                us = rpc_round(trees[name], ports[name], servers[name].pid, args.duration)
                cpu[name].append(us)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(20)
    ratios = [b / a for a, b in zip(cpu["A"], cpu["B"], strict=True)]
    print(
        f"rpc server CPU/round trip: A {statistics.median(cpu['A']):.2f} µs "
        f"({min(cpu['A']):.1f}-{max(cpu['A']):.1f}), B {statistics.median(cpu['B']):.2f} µs "
        f"({min(cpu['B']):.1f}-{max(cpu['B']):.1f}), "
        f"median per-round B/A {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
