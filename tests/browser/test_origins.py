"""docs/BROWSER.md's page on another origin, in real Chromium: it imports the
module from the server, and its upgrade is refused until the server lists its
origin in ``allowed_origins`` (the page sees 1006, the server log says why)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import fastcomm
from tests.integration.conftest import running

app = fastcomm.App()

# Run in a page: import the client from the server on 127.0.0.1:port, connect, ping.
CONNECT = """async ([port, token]) => {
  const { Client } = await import(`http://127.0.0.1:${port}/fastcomm.js`);
  try {
    const client = await Client.connect(`ws://127.0.0.1:${port}/ws`, { token });
    const pong = await client.request({ type: "ping" });
    await client.close();
    return pong.type;
  } catch (err) {
    return [err.name, err.code];
  }
}"""


async def test_a_page_on_another_origin_is_let_in_by_allowed_origins(
    browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(app) as pages:
        page = await browser.new_page()
        await page.goto(f"http://localhost:{pages.port}/healthz")  # not 127.0.0.1: another origin
        origin = f"http://localhost:{pages.port}"
        with caplog.at_level(logging.WARNING, logger="fastcomm.server"):
            async with running(app) as server:
                port = server.port
                assert await page.evaluate(CONNECT, [port, None]) == ["ConnectionClosed", 1006]
                assert server.node.stats.handshake_rejects == {403: 1}
        [warning] = [r.getMessage() for r in caplog.records if r.name == "fastcomm.server"]
        assert f"origin '{origin}' to host '127.0.0.1:{port}'" in warning
        assert "--allowed-origin" in warning
        async with running(app, allowed_origins=[origin]) as server:
            assert await page.evaluate(CONNECT, [server.port, None]) == "pong"
            assert server.node.stats.handshake_rejects == {}
