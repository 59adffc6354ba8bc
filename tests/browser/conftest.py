"""Fixtures for the browser tests: a real Chromium (Playwright) and real servers.

Chromium is Debian's ``/usr/bin/chromium``; without it these tests fail, they
are never skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fastcomm.loadgen.target import ChildServer

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


class DemoServer(ChildServer):
    """``python -m fastcomm serve --demo ...`` in a subprocess; can be killed and
    started again on the same port."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "fastcomm", "serve", "--demo", *args, "--port", "{port}"]
        super().__init__(
            command, name="fastcomm serve --demo", env=env, cwd=ROOT, ready="/readyz",
            start_timeout=20.0,
        )  # fmt: skip
        self.start()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.kill()


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
