"""The supervisor's restart policy, without processes: backoff, "keeps dying", status 2."""

from __future__ import annotations

import logging
import time

import pytest

from fastcomm.config import build_config
from fastcomm.runners.supervisor import MAX_BACKOFF, STABLE, Supervisor


class _Gone:
    pid = 4242


def _supervisor() -> Supervisor:
    config = build_config({"workers": 2, "broker": "redis://127.0.0.1:1"}, env={})
    return Supervisor(config, environ={"FASTCOMM_PORT": "1", "PATH": "/bin"})


def test_the_workers_get_the_config_as_variables_but_not_the_parents() -> None:
    supervisor = _supervisor()
    assert supervisor.env["FASTCOMM_WORKERS"] == "2"
    assert supervisor.env["FASTCOMM_PORT"] == "8000"  # the config's, not the inherited one
    assert supervisor.env["PATH"] == "/bin"
    assert [w.number for w in supervisor.workers] == [1, 2]


def test_a_worker_dying_quickly_backs_off_and_is_said_to_keep_dying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = _supervisor()
    worker = supervisor.workers[1]
    delays = []
    with caplog.at_level(logging.INFO, "fastcomm.runners.supervisor"):
        for run in range(1, 7):
            worker.proc, worker.runs, worker.started = _Gone(), run, time.monotonic()  # type: ignore[assignment]
            assert supervisor._died(worker, -9) is None
            assert worker.restart_at is not None
            delays.append(round(worker.restart_at - time.monotonic()))
    assert delays[:4] == [0, 1, 2, 4] and delays[-1] == MAX_BACKOFF
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "worker 2 (pid 4242) exited with signal SIGKILL; restarting it in 0.5 s"
    assert not any("keeps dying" in line for line in lines[:3])
    assert f"worker 2 keeps dying: 3 times in a row within {STABLE:.0f} s of its start" in lines
    worker.proc, worker.started = _Gone(), time.monotonic() - STABLE - 1  # type: ignore[assignment]
    supervisor._died(worker, 1)  # it had run a while: the backoff starts over
    assert worker.quick_deaths == 1


def test_a_startup_error_on_the_first_run_stops_the_server_with_status_2() -> None:
    supervisor = _supervisor()
    worker = supervisor.workers[0]
    worker.proc, worker.runs, worker.started = _Gone(), 1, time.monotonic()  # type: ignore[assignment]
    assert supervisor._died(worker, 2) == 2
    worker.proc, worker.runs = _Gone(), 2  # type: ignore[assignment]
    assert supervisor._died(worker, 2) is None  # a restart that fails is tried again
