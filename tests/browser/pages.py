"""Helpers to drive the browser client from a Playwright page."""

from __future__ import annotations

import json
from typing import Any

from tests.waiting import eventually

__all__ = ["HARNESS", "client_page", "until"]

# Loaded into a page served by the fastcomm server under test: window.fc is the
# module, window.events collects what the client reports, connect() opens
# window.client with the given options and subscribes to `channels`.
HARNESS = """
async () => {
  window.fc = await import("/fastcomm.js");
  window.events = [];
  window.pubs = {};
  window.connect = async (options, channels = []) => {
    const url = `ws://${location.host}/ws`;
    const client = new fc.Client(url, options);
    window.client = client;
    for (const name of ["connecting", "open", "reconnecting", "closed"]) {
      client.on(name, (detail) => events.push({ event: name, ...detail }));
    }
    client.on("error", (msg) => events.push({ event: "error", code: msg.code }));
    client.on("push", (msg) => events.push({ event: "push", type: msg.type }));
    await client.open();
    window.subs = {};
    for (const channel of channels) {
      const sub = await client.subscribe(channel);
      subs[channel] = sub;
      pubs[channel] = [];
      sub.on("publication", (p) => pubs[channel].push([p.epoch, p.offset, p.data]));
      sub.on("recovery", (e) => events.push({ event: "recovery", ...e }));
    }
    return client.session;
  };
}
"""


async def client_page(browser: Any, port: int) -> Any:
    """A page on the server's origin with the harness loaded."""
    page = await browser.new_page()
    page.on("console", lambda msg: print("console:", msg.text))
    await page.goto(f"http://127.0.0.1:{port}/healthz")
    await page.evaluate(HARNESS)
    return page


async def until(page: Any, expression: str, timeout: float = 10.0) -> Any:
    """Poll ``expression`` in the page until it is truthy; returns its value."""
    try:
        return await eventually(lambda: page.evaluate(expression), timeout, expression, 0.05)
    except AssertionError as error:
        events = await page.evaluate("JSON.stringify(window.events ?? null)")
        raise AssertionError(f"{error}; events: {json.loads(events)}") from None
