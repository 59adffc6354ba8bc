"""Each transport of fastcomm against its own bare baseline, in the same run.

    PYTHONPATH=. python3 bench/transports.py                  # 5 rounds x 3 s
    PYTHONPATH=. python3 bench/transports.py --rounds 7 --duration 5 --pairs picows

Pairs (fastcomm server, bare baseline, CPU ratio target), all with
``fastcomm bench --scenario rpc`` at 64 B over the same connections:

* ``picows``: ``fastcomm serve`` vs bare picows + msgspec (gate 1.2x);
* ``granian``: ``fastcomm serve --transport granian`` vs a bare granian ASGI
  echo doing the same JSON work (target 1.25x);
* ``uvicorn``: fastcomm's ASGI app under uvicorn vs FastAPI on uvicorn
  (target 1.25x), with a bare ASGI echo on uvicorn alongside as the floor.

The servers of all selected pairs run at once (each pinned to core 0, the
load generator to core 1) and every round visits each of them, alternating
the order; the table shows medians. Server CPU covers the server's whole
process tree (granian runs its worker in a child process). Exit status 1 if
a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import interleaved, median, running

__all__ = ["PAIRS", "main"]

PAIRS: dict[str, tuple[str, tuple[str, ...], float]] = {
    "picows": ("fastcomm", ("picows",), 1.2),
    "granian": ("fastcomm-granian", ("granian-asgi",), 1.25),
    "uvicorn": ("fastcomm-uvicorn", ("fastapi", "uvicorn-asgi"), 1.25),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    args = parser.parse_args()
    pairs = [p for p in args.pairs.split(",") if p]
    names = [n for p in pairs for n in (PAIRS[p][0], *PAIRS[p][1])]
    load = [
        "--scenario", "rpc", "--conns", str(args.conns), "--duration", str(args.duration),
        "--warmup", str(args.warmup), "--size", "64", "--message", '{"type":"echo"}',
    ]  # fmt: skip
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running(name)) for name in names]
        results = interleaved(servers, load, args.rounds)
    print(
        "| transport | server | server CPU per round trip | ratio | target | throughput (req/s) "
        "| p99 | load generator CPU |\n|---|---|---:|---:|---:|---:|---:|---:|"
    )
    misses = []
    for pair in pairs:
        ours, bases, target = PAIRS[pair]
        base_cpu = median(results[bases[0]], "server_cpu_us_per_req")
        for name in (ours, *bases):
            runs = results[name]
            cpu = median(runs, "server_cpu_us_per_req")
            ratio = median(results[ours], "server_cpu_us_per_req") / cpu
            print(
                f"| {pair} | {name} | {cpu:.2f} µs | {'-' if name == ours else f'{ratio:.2f}x'} "
                f"| {f'{target}x' if name == bases[0] else ''} "
                f"| {median(runs, 'throughput'):,.0f} | {median(runs, 'p99_ms'):.2f} ms "
                f"| {median(runs, 'client_cpu_pct'):.0f} % |"
            )
        ratio = median(results[ours], "server_cpu_us_per_req") / base_cpu
        if not ratio <= target:
            misses.append(f"{pair}: {ratio:.2f}x {bases[0]} (target {target}x)")
    for miss in misses:
        print(f"transports: target missed: {miss}", file=sys.stderr)
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
