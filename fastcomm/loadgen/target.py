"""Servers run as child processes on a free port, and the server under test.

:class:`ChildServer` runs any command on a free loopback port (``{port}`` in
its arguments) and waits until it serves: a TCP connect, or an HTTP GET of a
path answering 200. The integration tests, ``bench/`` and the load
generator all start their servers with it. :class:`ServerProcess` is the load
generator's: ``python -m fastcomm serve APP`` with the per-connection rate
limit out of the way and room for the run's connections, ready on
``/readyz``. :class:`Probe` reads a local server's CPU time and resident
memory from ``/proc``.
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
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path

from fastcomm.errors import FastcommError

__all__ = [
    "DEFAULT_APP",
    "BenchError",
    "ChildServer",
    "Probe",
    "ServerProcess",
    "ServerStartError",
    "free_port",
]

DEFAULT_APP = "fastcomm.loadgen.app:app"


class BenchError(FastcommError):
    """The benchmark could not run (server did not start, no connection...)."""


class ServerStartError(BenchError):
    """A :class:`ChildServer` exited, or was not serving in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildServer:
    """``command`` as a child process serving on ``host:port``.

    Each ``{port}`` in the arguments becomes :attr:`port` (a free one unless
    given). ``env`` is the child's whole environment (None: this process's);
    ``ready`` the path of an HTTP GET that must answer 200, or None to wait
    for a TCP connect only. Output (stdout and stderr) goes to a temporary
    file, never a pipe, so a chatty child cannot block on a full one.
    :meth:`start` raises :class:`ServerStartError` naming the exit status
    and the last line of output; :meth:`stop` sends SIGTERM and kills after
    ``stop_timeout``; :meth:`kill` sends SIGKILL. :meth:`start` may be called
    again after a stop (same port); :meth:`output` is everything the child
    printed. Use as a context manager, or :meth:`start`/:meth:`stop`.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        name: str = "the server",
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        ready: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready = ready
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with this object

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the child and return once it serves; on failure it is stopped."""
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + self.start_timeout
        while not self._serving():
            if self.proc.poll() is not None:
                error = ServerStartError(
                    f"{self.name} exited with status {self.proc.returncode}: "
                    f"{self.last_line() or 'no output'}"
                )
                self.stop()
                raise error
            if time.monotonic() > deadline:
                last = self.last_line()
                self.stop()
                raise ServerStartError(
                    f"{self.name} was not ready within {self.start_timeout:g}s"
                    + (f" (last output: {last})" if last else "")
                )
            time.sleep(0.05)

    def _serving(self) -> bool:
        try:
            if self.ready is None:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            url = f"http://{self.host}:{self.port}{self.ready}"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """SIGTERM (a fastcomm server drains), then kill after ``stop_timeout``."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: the child gets no chance to drain (a crash)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def output(self) -> str:
        """Everything the child printed so far (stdout and stderr)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def last_line(self) -> str:
        """The last non-empty line of output (at most 300 characters)."""
        lines = [line for line in self.output().splitlines() if line]
        return lines[-1][:300] if lines else ""

    def __enter__(self) -> ChildServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerProcess(ChildServer):
    """``python -m fastcomm serve APP`` as the server under test, on ``127.0.0.1``.

    ``extra_args`` (a shell-quoted string) is appended to the command line and
    may override the benchmark defaults. Ready once ``/readyz`` answers;
    exiting sends SIGTERM (drain) and kills after 15 seconds.
    """

    def __init__(self, app: str, conns: int, extra_args: str = "") -> None:
        command = [
            sys.executable, "-m", "fastcomm", "serve", app,
            "--host", "127.0.0.1", "--port", "{port}",
            "--rate-limit", "1e9", "--rate-burst", "1000000000",
            "--max-connections", str(max(10_000, conns * 2 + 100)),
            "--log-level", "warning", *shlex.split(extra_args),
        ]  # fmt: skip
        super().__init__(command, name="the server under test", ready="/readyz")

    def __enter__(self) -> ServerProcess:
        self.start()
        return self


class Probe:
    """Reads CPU seconds and resident KiB of process ``pid`` and its descendants
    (None: probes nothing). The whole tree counts, so that a server whose work
    runs in worker processes (granian) is measured by its main process id."""

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

    def tree(self) -> list[int]:
        """``pid`` and its live descendants."""
        assert self.pid is not None
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children(pid))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread of the tree, in seconds (nanosecond
        precision from ``schedstat`` where the kernel provides it)."""
        root, *rest = self.tree()
        return _cpu_seconds(root) + sum(_gone_is_zero(_cpu_seconds, pid) for pid in rest)

    def rss_kib(self) -> float:
        """Resident memory of the tree, in KiB (shared pages count once per process)."""
        root, *rest = self.tree()
        return _rss_kib(root) + sum(_gone_is_zero(_rss_kib, pid) for pid in rest)


def children(pid: int) -> list[int]:
    """Child process ids of ``pid``: ``/proc/<pid>/task/*/children`` where the kernel
    has it, else a scan of every process's parent id."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    try:
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found.extend(int(child) for child in fh.read().split())
        return found
    except FileNotFoundError:  # no CONFIG_PROC_CHILDREN
        pass
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{entry}/stat") as fh,
            ):
                if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def _gone_is_zero(read: Callable[[int], float], pid: int) -> float:
    try:
        return read(pid)
    except (OSError, ValueError):
        return 0.0  # a descendant that exited meanwhile


def _cpu_seconds(pid: int) -> float:
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        total = 0
    if total > 0:
        return total / 1e9
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    raise ValueError("no VmRSS")
