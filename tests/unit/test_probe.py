"""Probe: the CPU time of a server counts its worker processes (granian's, say)."""

from __future__ import annotations

import subprocess
import sys
import time

from fastcomm.loadgen.target import Probe, _cpu_seconds, children

# A parent that only waits, and a child of it that burns CPU until told to stop.
_PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
print(child.pid, flush=True)
sys.stdin.read()
child.kill()
"""


def test_cpu_of_descendants_counts() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        probe = Probe(parent.pid)
        assert children(parent.pid) == [worker]
        assert probe.tree() == [parent.pid, worker]
        before, alone = probe.cpu_seconds(), _cpu_seconds(parent.pid)
        time.sleep(0.5)
        burned = probe.cpu_seconds() - before
        assert burned > 0.2  # the worker's CPU, although the parent idles
        assert _cpu_seconds(parent.pid) - alone < 0.1
        assert probe.rss_kib() > Probe(worker).rss_kib()
    finally:
        parent.communicate("")
