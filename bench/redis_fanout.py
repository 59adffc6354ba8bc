"""Fan-out through Redis: fastcomm (two ``serve --broker redis://`` processes),
python-socketio's AsyncRedisManager (two processes) and one fastcomm process on
the memory broker, same workload, rounds interleaved in one run.

    PYTHONPATH=. python3 bench/redis_fanout.py --rounds 3 --duration 4 \\
        --subscribers 200 1000 [--sio-python /tmp/venv-sio/bin/python] [--json out.json]

Subscribers are spread over a configuration's processes, the publisher is on
the first one. ``single``: one publication, wait until every subscriber has it,
the next; ``burst``: ``--burst`` publications back to back, then wait. Every
server process is pinned to CPU 0, the load generator (this process) and each
redis-server to CPU 1. Server CPU is the servers' (summed, from ``/proc``),
Redis's apart; Redis commands come from ``INFO commandstats`` (calls made in a
script count too: ``publish`` inside the publish script). Without
``--sio-python`` (or if it cannot import socketio) python-socketio is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import redis
import uvloop

from bench.redis_clients import Protocol, Result, run_load
from fastcomm.loadgen.target import ChildServer, Probe
from tests.redisserver import RedisServer

ROOT = Path(__file__).resolve().parents[1]
_FASTCOMM = (
    "-m", "fastcomm", "serve", "fastcomm.loadgen.app:app", "--port", "{port}",
    "--rate-limit", "1e9", "--rate-burst", "1000000000", "--max-connections", "30000",
    "--log-level", "warning",
)  # fmt: skip
_SIO = str(ROOT / "bench" / "baselines" / "socketio_redis.py")
_COMMANDS = ("evalsha", "eval", "publish", "ping", "subscribe", "pexpire", "xadd", "hset")


class Config:
    """One configuration: its server processes, their protocol and their Redis."""

    def __init__(self, name: str, protocol: str, servers: list[ChildServer], redis_: Any) -> None:
        self.name, self.protocol, self.servers, self.redis = (
            name,
            Protocol(protocol),
            servers,
            redis_,
        )
        self.probes = [Probe(server.pid) for server in servers]
        self.redis_probe = Probe(redis_.process.pid) if redis_ is not None else None
        self.client = redis.Redis(port=redis_.port) if redis_ is not None else None

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{server.port}" for server in self.servers]

    def snapshot(self) -> dict[str, float]:
        each = [probe.cpu_seconds() for probe in self.probes]
        figures = {"cpu": sum(each)} | {f"cpu.{n}": cpu for n, cpu in enumerate(each)}
        if self.redis_probe is not None and self.client is not None:
            figures["redis_cpu"] = self.redis_probe.cpu_seconds()
            stats = self.client.info("commandstats")
            for name in _COMMANDS:
                figures[f"cmd.{name}"] = float(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
        return figures


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _server(command: list[str], name: str, ready: str | None) -> ChildServer:
    pinned = ["taskset", "-c", "0", *command]
    return ChildServer(pinned, name=name, env=_env(), cwd=ROOT, ready=ready, stop_timeout=10)


@contextlib.contextmanager
def configs(sio_python: str | None) -> Iterator[list[Config]]:
    with contextlib.ExitStack() as stack:
        made: list[Config] = []

        def redis_server() -> RedisServer:
            server = RedisServer().start()
            stack.callback(server.remove)
            assert server.process is not None
            os.sched_setaffinity(server.process.pid, {1})
            return server

        def start(child: ChildServer) -> ChildServer:
            return stack.enter_context(child)

        memory = start(_server([sys.executable, *_FASTCOMM], "fastcomm memory", "/readyz"))
        made.append(Config("fastcomm memory, 1 process", "fastcomm", [memory], None))
        fc_redis = redis_server()
        broker = ["--broker", fc_redis.url]
        fcs = [
            start(_server([sys.executable, *_FASTCOMM, *broker], f"fastcomm {n}", "/readyz"))
            for n in (1, 2)
        ]
        made.append(Config("fastcomm redis, 2 processes", "fastcomm", fcs, fc_redis))
        if sio_python:
            sio_redis = redis_server()
            sios = [
                start(_server([sio_python, _SIO, "{port}", sio_redis.url], f"socketio {n}", None))
                for n in (1, 2)
            ]
            made.append(Config("python-socketio redis, 2 processes", "socketio", sios, sio_redis))
        yield made


def figures(config: Config, result: Result, subscribers: int) -> dict[str, Any]:
    w = result.window
    row: dict[str, Any] = {
        "config": config.name, "subscribers": subscribers, "mode": result.mode,
        "deliveries_per_s": result.deliveries / result.seconds,
        "cpu_us_per_delivery": w["cpu"] / max(1, result.deliveries) * 1e6,
        "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "lost": result.lost,
        "out_of_order": result.out_of_order, "duplicates": result.duplicates,
        "offset_breaks": result.offset_breaks, "publications": result.publications,
        "cpu_us_per_delivery_each": [
            w[f"cpu.{n}"] / max(1, result.deliveries) * 1e6 for n in range(len(config.servers))
        ],
    }  # fmt: skip
    if "redis_cpu" in w:
        row["redis_cpu_us_per_publication"] = w["redis_cpu"] / result.publications * 1e6
        for name in _COMMANDS:
            row[f"{name}_per_publication"] = w[f"cmd.{name}"] / result.publications
    return row


def profiled(config: Config, args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    """py-spy on each server of ``config`` for the whole load (``--py-spy DIR``)."""
    if not args.py_spy:
        return []
    Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    seconds = str(int(1 + len(args.modes) * args.duration + 2))
    return [
        subprocess.Popen([
            args.py_spy_bin, "record", "-p", str(server.pid), "-d", seconds, "-r", "200",
            "-f", "raw", "-o", f"{args.py_spy}/{config.name.split(',')[0]}-{n}.txt",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n, server in enumerate(config.servers)
    ]  # fmt: skip


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    bursts = {"single": 1, "burst": args.burst}
    modes = [(mode, bursts[mode], args.duration) for mode in args.modes]
    rows: list[dict[str, Any]] = []
    with configs(args.sio_python) as everything:
        made = [c for c in everything if not args.only or args.only in c.name]
        for subscribers in args.subscribers:
            for n in range(args.rounds):
                order = made[n % len(made) :] + made[: n % len(made)]
                for config in order:
                    spies = profiled(config, args)
                    results = uvloop.run(run_load(
                        config.protocol, config.urls, subscribers, modes, config.snapshot,
                    ))  # fmt: skip
                    for spy in spies:
                        spy.wait(60)
                    for result in results:
                        row = figures(config, result, subscribers) | {"round": n}
                        rows.append(row)
                        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Medians per (subscribers, mode, config), CPU ratios against the memory broker
    taken round by round (same run, same round) before the median."""
    keys = sorted({(r["subscribers"], r["mode"], r["config"]) for r in rows}, key=str)
    out = [
        "| subscribers | mode | server | deliveries/s | server CPU per delivery | vs memory "
        "| p50 | p99 | out of order | lost | Redis calls per publication |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for subs, mode, name in keys:
        mine = [r for r in rows if (r["subscribers"], r["mode"], r["config"]) == (subs, mode, name)]
        base = {
            r["round"]: r["cpu_us_per_delivery"]
            for r in rows
            if (r["subscribers"], r["mode"]) == (subs, mode) and "memory" in r["config"]
        }
        ratios = [r["cpu_us_per_delivery"] / base[r["round"]] for r in mine if r["round"] in base]

        def med(key: str, rows_: list[dict[str, Any]] = mine) -> float:
            return statistics.median(r[key] for r in rows_)

        calls = ", ".join(
            f"{c} {med(c + '_per_publication'):.2f}"
            for c in _COMMANDS
            if f"{c}_per_publication" in mine[0] and med(c + "_per_publication") > 0.004
        )
        out.append(
            f"| {subs} | {mode} | {name} | {med('deliveries_per_s'):,.0f} "
            f"| {med('cpu_us_per_delivery'):.2f} µs | {statistics.median(ratios):.2f}x "
            f"| {med('p50_ms'):.2f} ms | {med('p99_ms'):.2f} ms "
            f"| {sum(r['out_of_order'] for r in mine)} | {sum(r['lost'] for r in mine)} "
            f"| {calls or '-'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[200, 1000])
    parser.add_argument(
        "--modes", nargs="+", choices=("single", "burst"), default=["single", "burst"]
    )
    parser.add_argument("--sio-python", default=None)
    parser.add_argument("--only", default=None, help="run the configurations naming this")
    parser.add_argument("--py-spy", default=None, help="profile each server into DIR (raw)")
    parser.add_argument("--py-spy-bin", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--json", default=None, help="write every round's figures here")
    args = parser.parse_args()
    if args.sio_python:
        check = [args.sio_python, "-c", "import socketio, aiohttp, uvloop"]
        if subprocess.run(check, capture_output=True, check=False).returncode != 0:
            print(f"{args.sio_python} cannot import socketio: skipping it", file=sys.stderr)
            args.sio_python = None
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    rows = run(args)
    if args.json:
        Path(args.json).write_text(msgspec.json.format(msgspec.json.encode(rows)).decode())
    print(table(rows))


if __name__ == "__main__":
    main()
