"""The browser client behind a balancer, when the node it is on dies: it resumes on
another node with no gap and no duplicate at its API (the repeats a checkpoint implies
are dropped by offset)."""

from __future__ import annotations

from typing import Any

from fastcomm.channels.memory import MemoryBroker
from tests.browser.pages import client_page, until
from tests.integration.balancer import Balancer
from tests.integration.test_nodes import die, nodes, record_of
from tests.waiting import eventually


async def test_the_browser_client_resumes_on_another_node_when_its_node_dies(
    browser: Any,
) -> None:
    shared = MemoryBroker()
    async with (
        nodes(lambda: shared, 2, session_checkpoint=60) as (one, two),
        Balancer(one.port) as lb,
    ):
        page = await client_page(browser, lb.port)  # the page comes through the balancer
        session = await page.evaluate("connect({backoffInitial: 0.05}, ['feed'])")
        token = await page.evaluate("client.resumeToken")

        async def subscribed_in_record() -> bool:
            kept = await record_of(one, token)
            return kept is not None and "feed" in kept.all_positions()

        await eventually(subscribed_in_record, 5, "the subscription is in the record")
        for i in range(1, 4):  # after the last write of the record: they come again
            await two.app.publish("feed", i)
        await until(page, "pubs.feed.length === 3")
        lb.target = two.port
        await die(one)
        lb.cut()
        for i in range(4, 6):
            await two.app.publish("feed", i)
        await until(page, "pubs.feed.length === 5")
        pubs = await page.evaluate("pubs.feed")
        assert [(offset, data) for _, offset, data in pubs] == [(i, i) for i in range(1, 6)]
        assert await page.evaluate("subs.feed.duplicates") == 3  # 1-3 again, dropped
        opened = await page.evaluate("events.filter((e) => e.event === 'open')")
        assert [e["resumed"] for e in opened] == [False, True]
        assert await page.evaluate("client.session") == session
        assert two.node.sessions.get(session) is not None
