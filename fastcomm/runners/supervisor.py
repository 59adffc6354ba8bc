"""``fastcomm serve --workers N`` on picows: one port, N worker processes.

The supervisor runs no event loop and serves nothing. It picks the port
(a free one for port 0), then starts N ``python -m fastcomm serve``
processes that all listen on it with ``SO_REUSEPORT`` (the kernel spreads
new connections over them). Each worker gets the whole configuration as
``FASTCOMM_*`` variables (as the granian runner passes it), plus its
``worker_id`` (1 to N) and the ``server_id`` they share, which tells the
workers of this server from other nodes on the same broker.

A worker that dies is started again after a backoff that doubles while
it keeps dying within :data:`STABLE` seconds of its start (capped at
:data:`MAX_BACKOFF`). SIGTERM or SIGINT is forwarded to every worker, each
drains (1001 to its clients, replies in flight kept); the supervisor
returns 0 once all exited, having exited 0. A worker that fails its very
first start with status 2 (a startup error: port in use, broker down)
stops the server with status 2: the next ones would fail the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from fastcomm.config import ENV_PREFIX, Config
from fastcomm.runners.granian import export_config

__all__ = ["MAX_BACKOFF", "STABLE", "Supervisor", "supervise"]

log = logging.getLogger(__name__)

STABLE = 10.0
"""A worker that ran this many seconds is not "dying": its backoff starts over."""
MAX_BACKOFF = 10.0
_FIRST_BACKOFF = 0.5
_KEEPS_DYING = 3  # quick deaths in a row before the ERROR line
_STARTUP_ERROR = 2


def _exit_text(status: int) -> str:
    if status < 0:
        try:
            return f"signal {signal.Signals(-status).name}"
        except ValueError:
            return f"signal {-status}"
    return f"status {status}"


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the supervisor dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Worker:
    """One worker slot: its process, when it started, how often it died quickly."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.quick_deaths = 0
        self.restart_at: float | None = 0.0
        self.runs = 0


class Supervisor:
    """Starts ``config.workers`` workers of ``config`` and keeps them running."""

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.command = [sys.executable, "-m", "fastcomm", "serve"]
        base = dict(os.environ if environ is None else environ)
        self._namespaces = export_config(config, base)
        self.env = base
        self.workers = [_Worker(n) for n in range(1, config.workers + 1)]
        self.stopping: int | None = None  # the signal being forwarded

    def _start(self, worker: _Worker) -> None:
        env = {**self.env, ENV_PREFIX + "WORKER_ID": str(worker.number)}
        worker.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
            preexec_fn=_die_with_parent,  # the supervisor has no threads: safe here
        )
        worker.started = time.monotonic()
        worker.restart_at = None
        worker.runs += 1
        log.info("worker %d started, pid %d", worker.number, worker.proc.pid)

    def _signal(self, signum: int, frame: Any) -> None:
        again = self.stopping is not None
        self.stopping = signum
        if not again:
            log.info("signal received, stopping %d workers", len(self.workers))
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signum)

    def _died(self, worker: _Worker, status: int) -> int | None:
        """Schedule the restart of ``worker``; a status to exit with, or None."""
        assert worker.proc is not None
        pid, worker.proc = worker.proc.pid, None
        now = time.monotonic()
        if status == _STARTUP_ERROR and worker.runs == 1:
            log.error("worker %d (pid %d) could not start (status 2): stopping", worker.number, pid)
            return _STARTUP_ERROR
        if now - worker.started < STABLE:
            worker.quick_deaths += 1
        else:
            worker.quick_deaths = 1
        delay = min(MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (worker.quick_deaths - 1))
        worker.restart_at = now + delay
        log.warning(
            "worker %d (pid %d) exited with %s; restarting it in %.1f s",
            worker.number, pid, _exit_text(status), delay,
        )  # fmt: skip
        if worker.quick_deaths >= _KEEPS_DYING:
            log.error(
                "worker %d keeps dying: %d times in a row within %.0f s of its start",
                worker.number, worker.quick_deaths, STABLE,
            )  # fmt: skip
        return None

    def run(self) -> int:
        """Supervise until a signal stopped every worker; the exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._signal)
        host, port = self.config.host, self.config.port
        log.info("supervising %d workers on %s:%d", len(self.workers), host, port)
        try:
            status = self._loop()
        finally:
            if self._namespaces is not None:
                os.unlink(self._namespaces)
        return status

    def _loop(self) -> int:
        failed: int | None = None
        while self.stopping is None:
            now = time.monotonic()
            for worker in self.workers:
                if worker.proc is None:
                    if worker.restart_at is not None and now >= worker.restart_at:
                        self._start(worker)
                    continue
                status = worker.proc.poll()
                if status is not None:
                    failed = self._died(worker, status)
                    if failed is not None:
                        self._signal(signal.SIGTERM, None)
                        break
            time.sleep(0.05)
        statuses = [w.proc.wait() for w in self.workers if w.proc is not None]
        if failed is not None:
            return failed
        if any(statuses):
            log.warning("workers exited with %s", ", ".join(map(_exit_text, statuses)))
            return 1
        log.info("all workers stopped")
        return 0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def supervise(config: Config) -> int:
    """Run ``config.workers`` picows workers of ``config`` on one port; the exit status."""
    port = config.port or _free_port(config.host)
    server_id = config.server_id or os.urandom(6).hex()
    config = msgspec.structs.replace(config, port=port, server_id=server_id)
    return Supervisor(config).run()
