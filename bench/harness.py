"""Servers under test and the load generator, as CPU-pinned subprocesses.

Shared by the benchmarks in ``bench/`` and by ``scripts/compare``. On a
machine with two or more cores the server runs on core 0 and the load
generator on core 1 (``taskset``), so neither steals the other's CPU; the
server's CPU time is read from ``/proc`` by the load generator
(``--server-pid``). Comparisons interleave the servers round by round and use
medians, because a shared machine drifts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastcomm.loadgen.target import ChildServer

__all__ = [
    "CLIENT_CPUS",
    "ROOT",
    "SERVERS",
    "SERVER_CPUS",
    "RunningServer",
    "interleaved",
    "loadgen",
    "median",
    "running",
]

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "bench" / "baselines"
_PINNED = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SERVER_CPUS = "0" if _PINNED else None
CLIENT_CPUS = "1" if _PINNED else None
_FASTCOMM_ARGS = (
    "fastcomm.loadgen.app:app", "--rate-limit", "1e9", "--rate-burst", "1000000000",
    "--max-connections", "30000", "--log-level", "warning",
)  # fmt: skip
_UNMETERED = str(BASELINES / "fastcomm_unmetered.py")
SERVERS: dict[str, tuple[str, ...]] = {
    "fastcomm": ("-m", "fastcomm", "serve", *_FASTCOMM_ARGS, "--port", "{port}"),
    "fastcomm-unmetered": (_UNMETERED, *_FASTCOMM_ARGS, "--port", "{port}"),
    "picows": (str(BASELINES / "picows_echo.py"), "{port}"),
    "picows-aiofastnet": (str(BASELINES / "picows_echo.py"), "{port}", "--aiofastnet"),
    "fastapi": (str(BASELINES / "fastapi_echo.py"), "{port}"),
    "websockets": (str(BASELINES / "websockets_echo.py"), "{port}"),
    "fastcomm-granian": (
        "-m",
        "fastcomm",
        "serve",
        *_FASTCOMM_ARGS,
        "--transport",
        "granian",
        "--port",
        "{port}",
    ),
    "granian-asgi": (str(BASELINES / "granian_asgi_echo.py"), "{port}"),
    "uvicorn-asgi": (str(BASELINES / "uvicorn_asgi_echo.py"), "{port}"),
    "fastcomm-uvicorn": (str(BASELINES / "fastcomm_uvicorn.py"), "{port}"),
}


def _pin(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus is not None else []


@dataclass
class RunningServer:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def running(name: str, cpus: str | None = SERVER_CPUS) -> Iterator[RunningServer]:
    """Run server ``name`` (a key of :data:`SERVERS`) on a free port, pinned to ``cpus``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    env["PYTHONPATH"] = str(ROOT)
    command = [*_pin(cpus), sys.executable, *SERVERS[name]]
    with ChildServer(command, name=f"{name} server", env=env, cwd=ROOT, stop_timeout=10) as child:
        assert child.proc is not None
        time.sleep(0.2)  # let the first accept loop settle
        yield RunningServer(name, child.port, child.proc)


def loadgen(
    server: RunningServer, *args: str, cpus: str | None = CLIENT_CPUS, timeout: float = 900
) -> dict[str, Any]:
    """Run ``fastcomm bench --url <server> ARGS --json``; return its metrics."""
    cmd = [
        *_pin(cpus), sys.executable, "-m", "fastcomm.loadgen", "--url", server.url,
        "--server-pid", str(server.pid), "--json", "--no-progress", *args,
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()}")
    metrics: dict[str, Any] = json.loads(done.stdout)["metrics"]
    return metrics


def interleaved(
    servers: Sequence[RunningServer], args: Sequence[str], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Run the same load against every server, ``rounds`` times, alternating the
    order each round so that drift of a shared machine hits all alike."""
    results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
    for n in range(rounds):
        order = servers if n % 2 == 0 else list(reversed(servers))
        for server in order:
            results[server.name].append(loadgen(server, *args))
    return results


def median(runs: Sequence[dict[str, Any]], metric: str) -> float:
    """Median of ``metric`` over runs (NaN if no run measured it)."""
    values = [run[metric] for run in runs if run.get(metric) is not None]
    return statistics.median(values) if values else float("nan")
