"""ChildServer: the one way tests, benchmarks and the load generator start a server."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fastcomm.loadgen.target import ChildServer, ServerStartError

# A TCP server on argv[1] that checks its environment and working directory first.
LISTEN = """
import os, signal, socket, sys, time
if sys.argv[2:3] == ["deaf"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("CHILD_MARK") != "yes" or not os.path.exists("marker"):
    print("wrong environment", flush=True)
    sys.exit(4)
sock = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    time.sleep(1)
"""

# An HTTP server that accepts at once but answers /readyz 503 for its first half second.
SLOW_READY = """
import http.server, sys, time
started = time.monotonic()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if time.monotonic() - started > 0.5 else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def listener(tmp_path: Path, *extra: str, **options: float) -> ChildServer:
    (tmp_path / "marker").touch()
    env = {**os.environ, "CHILD_MARK": "yes"}
    command = [sys.executable, "-c", LISTEN, "{port}", *extra]
    return ChildServer(command, name="listener", env=env, cwd=tmp_path, **options)


def test_port_env_and_cwd_reach_the_child_and_stop_terminates_it(tmp_path: Path) -> None:
    child = listener(tmp_path)
    with child:
        assert child.command[-1] == str(child.port)
        assert child.url == f"ws://127.0.0.1:{child.port}/ws"
        with socket.create_connection(("127.0.0.1", child.port), timeout=1):
            pass
    assert child.proc is not None and child.proc.returncode == -signal.SIGTERM


def test_a_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    child = listener(tmp_path, "deaf", stop_timeout=0.3)
    child.start()  # returns once it listens, so its SIGTERM handler is in place
    child.stop()
    assert child.proc is not None and child.proc.returncode == -signal.SIGKILL


def test_http_readiness_waits_for_200() -> None:
    began = time.monotonic()
    with ChildServer([sys.executable, "-c", SLOW_READY, "{port}"], ready="/readyz") as child:
        assert time.monotonic() - began >= 0.5
        url = f"http://127.0.0.1:{child.port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as response:
            assert response.status == 200


def test_exit_names_the_status_and_last_line(tmp_path: Path) -> None:
    child = ChildServer([sys.executable, "-c", LISTEN, "{port}"], name="listener", cwd=tmp_path)
    with pytest.raises(
        ServerStartError, match=r"^listener exited with status 4: wrong environment$"
    ):
        child.start()


def test_not_ready_in_time_is_an_error_and_the_child_is_stopped() -> None:
    script = "import time; print('still booting', flush=True); time.sleep(60)"
    child = ChildServer([sys.executable, "-c", script], start_timeout=0.5)
    with pytest.raises(
        ServerStartError, match=r"not ready within 0.5s \(last output: still booting\)"
    ):
        child.start()
    assert child.proc is not None and child.proc.poll() is not None
