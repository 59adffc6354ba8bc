"""The browser client's subscriptions at the edges, in real Chromium against a
real server whose subscribe hook can be held (the Python client's
tests/integration/test_client_channel_edges.py has the same cases)."""

from __future__ import annotations

from typing import Any

from tests.browser.pages import client_page, until
from tests.integration.test_client_channel_edges import serve, subscribers

FAILED = "(e) => [e.name, e.message]"


async def test_subscribing_again_after_an_abandoned_subscribe_waits_for_its_undoing(
    browser: Any,
) -> None:
    """The server still holds the abandoned ``subscribe``: a new ``subscribe``
    goes out only once the client's ``unsubscribe`` of it was answered (sent at
    once, it would be answered ``already_subscribed`` and the channel would stay
    subscribed on the server, untracked by the page)."""
    async with serve() as (server, door):
        page = await client_page(browser, server.port)
        await page.evaluate("connect({})")
        door.hold.add("slow")
        abandoned = await page.evaluate(
            f"client.subscribe('slow', {{timeout: 0.2}}).then(() => null, {FAILED})"
        )
        assert abandoned == ["TimeoutError", "no reply to subscribe within 0.2 s"]
        assert door.held.is_set()
        early = await page.evaluate(
            f"client.subscribe('slow', {{timeout: 0.05}}).then(() => null, {FAILED})"
        )
        assert early == ["TimeoutError", "still undoing an abandoned subscribe to slow"]
        await page.evaluate(
            """() => {
              const again = () => client.subscribe('slow');
              window.retries = Promise.allSettled([again(), again()]);
              window.retries.then((results) => {
                window.settled = results.map((r) => r.status === 'fulfilled'
                  ? ['subscribed', r.value.channel] : [r.reason.name, r.reason.message]);
                const sub = results[0].value;
                window.got = [];
                sub?.on('publication', (p) => got.push(p.data));
              });
            }"""
        )
        door.release.set()  # the server settles the subscribe, then takes the unsubscribe
        settled = await until(page, "window.settled")
        assert settled == [["subscribed", "slow"], ["Error", "already subscribed to slow"]]
        assert await page.evaluate("[...client.subscriptions.keys()]") == ["slow"]
        await server.app.publish("slow", "once")
        await until(page, "got.length === 1")
        assert await page.evaluate("got") == ["once"]
        assert await subscribers(server, "slow") == 1
        await page.evaluate("client.close()")
