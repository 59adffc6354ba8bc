"""The browser client's watchdog: a server that goes silent is given up and replaced."""

from __future__ import annotations

import signal
from typing import Any

from tests.browser.conftest import DemoServer
from tests.browser.pages import client_page, until


async def test_silent_server_is_detected_and_the_client_comes_back(
    browser: Any, demo_server: type[DemoServer]
) -> None:
    server = demo_server("--heartbeat", "1", "--heartbeat-timeout", "1")
    page = await client_page(browser, server.port)
    await page.evaluate("connect({heartbeatMargin: 0.5, connectTimeout: 1.5}, ['feed'])")
    # Idle pings keep a quiet but healthy connection alive.
    await page.wait_for_timeout(2500)
    assert await page.evaluate("events.map((e) => e.event)") == ["connecting", "open"]
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)  # the TCP connection stays up, nothing arrives
    try:
        await until(page, "events.some((e) => e.event === 'reconnecting')", timeout=5)
        event = await page.evaluate("events.find((e) => e.event === 'reconnecting')")
        assert event["code"] == 1006
    finally:
        server.proc.send_signal(signal.SIGCONT)
    await until(page, "events.some((e) => e.event === 'open' && e.reconnects >= 1)", timeout=20)
    assert await page.evaluate("client.state") == "open"
