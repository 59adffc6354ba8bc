"""Fixtures for the browser tests: a real Chromium (Playwright) and real servers.

Chromium is Debian's ``/usr/bin/chromium``; without it these tests fail, they
are never skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    f"the browser tests need Chromium at {CHROMIUM} and Playwright for Python: "
    "apt-get install -y chromium && pip install playwright (never `playwright install`)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoServer:
    """``python -m fastcomm serve --demo ...`` in a subprocess; can be killed and
    started again on the same port."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "fastcomm", "serve", "--demo", *self.args]
        cmd += ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"{self.http}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def demo_server() -> Iterator[type[DemoServer]]:
    started: list[DemoServer] = []

    class Tracked(DemoServer):
        def __init__(self, *args: str) -> None:
            started.append(self)
            super().__init__(*args)

    yield Tracked
    for server in started:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(INSTALL_HINT)
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(INSTALL_HINT)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
