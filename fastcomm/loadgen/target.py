"""The server under test: started by the load generator, or only probed.

:class:`ServerProcess` runs ``python -m fastcomm serve APP`` on a free
loopback port, with the per-connection rate limit out of the way and room for
the run's connections, and waits for ``/readyz``. :class:`Probe` reads a local
server's CPU time and resident memory from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path

from fastcomm.errors import FastcommError

__all__ = ["DEFAULT_APP", "BenchError", "Probe", "ServerProcess", "free_port"]

DEFAULT_APP = "fastcomm.loadgen.app:app"
_START_TIMEOUT = 30.0


class BenchError(FastcommError):
    """The benchmark could not run (server did not start, no connection...)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m fastcomm serve`` as a child process on ``127.0.0.1``.

    ``extra_args`` (a shell-quoted string) is appended to the command line and
    may override the benchmark defaults. Use as a context manager; exiting
    sends SIGTERM (drain) and kills after 15 seconds.
    """

    def __init__(self, app: str, conns: int, extra_args: str = "") -> None:
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.command = [
            sys.executable, "-m", "fastcomm", "serve", app,
            "--host", self.host, "--port", str(self.port),
            "--rate-limit", "1e9", "--rate-burst", "1000000000",
            "--max-connections", str(max(10_000, conns * 2 + 100)),
            "--log-level", "warning", *shlex.split(extra_args),
        ]  # fmt: skip
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the server; raise :class:`BenchError` if it is not ready in time."""
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + _START_TIMEOUT
        ready = f"http://{self.host}:{self.port}/readyz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"the server under test exited with status {self.proc.returncode}: "
                    f"{self._last_line() or 'no output'}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(ready, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"the server under test was not ready within {_START_TIMEOUT:g}s")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._log.close()

    def _last_line(self) -> str:
        self._log.seek(0)
        lines = [line for line in self._log.read().decode(errors="replace").splitlines() if line]
        return lines[-1][:300] if lines else ""

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Probe:
    """Reads CPU seconds and resident KiB of process ``pid`` (None: probes nothing)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        if pid is not None and not Path(f"/proc/{pid}/status").exists():
            raise BenchError(f"no local process with id {pid} (--server-pid)")

    def snapshot(self, phase: str, into: MutableMapping[str, float]) -> None:
        """Store ``<phase>.time`` (monotonic), ``<phase>.cpu`` and ``<phase>.rss``."""
        if self.pid is None:
            return
        with contextlib.suppress(OSError, ValueError):
            into[f"{phase}.cpu"] = self.cpu_seconds()
            into[f"{phase}.rss"] = self.rss_kib()
            into[f"{phase}.time"] = time.monotonic()

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread, in seconds (nanosecond precision
        from ``schedstat`` where the kernel provides it)."""
        total = 0
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/schedstat") as fh:
                    total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            total = 0
        if total > 0:
            return total / 1e9
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> float:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1])
        raise ValueError("no VmRSS")
