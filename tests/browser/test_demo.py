"""The demo page (``fastcomm serve --demo``) in real Chromium."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import fastcomm
from tests.browser.conftest import DemoServer
from tests.browser.pages import until

CHAT_TEXTS = "[...document.querySelectorAll('#log li.chat .text')].map((e) => e.textContent)"
MEMBERS = "[...document.querySelectorAll('#members li')].map((e) => e.textContent)"
STATE = "document.getElementById('state').dataset.state"


async def open_demo(browser: Any, server: DemoServer, query: str) -> Any:
    page = await browser.new_page()
    page.on("console", lambda msg: print("console:", msg.text))
    await page.goto(f"{server.http}/demo?{query}")
    await until(page, f"{STATE} === 'open' && !document.getElementById('text').disabled")
    return page


async def say(page: Any, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


def test_assets_are_served_and_demo_only_when_asked(demo_server: type[DemoServer]) -> None:
    server = demo_server()
    with urllib.request.urlopen(f"{server.http}/fastcomm.js", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/javascript")
        assert b"export class Client" in resp.read()
    with urllib.request.urlopen(f"{server.http}/demo", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b'from "/fastcomm.js"' in resp.read()


async def test_two_pages_chat_and_see_each_other(
    browser: Any, demo_server: type[DemoServer]
) -> None:
    server = demo_server()
    alice = await open_demo(browser, server, "name=alice")
    bob = await open_demo(browser, server, "name=bob&subprotocol=msgpack")
    await until(alice, f"{MEMBERS}.length === 2")
    await until(alice, f"{MEMBERS}.includes('bob')")
    await until(bob, f"{MEMBERS}.includes('alice') && {MEMBERS}.includes('bob (you)')")
    await until(alice, "document.getElementById('log').textContent.includes('bob joined')")
    await say(alice, "hello from alice")
    await until(bob, f"{CHAT_TEXTS}.length === 1")
    await say(bob, "hi alice")
    for page in (alice, bob):  # each page renders its own copy when it arrives
        await until(page, f"{CHAT_TEXTS}.length === 2")
    assert await alice.evaluate(CHAT_TEXTS) == ["hello from alice", "hi alice"]
    assert await bob.evaluate(CHAT_TEXTS) == ["hello from alice", "hi alice"]
    # A third page gets the conversation from history on load.
    carol = await open_demo(browser, server, "name=carol")
    await until(carol, f"{CHAT_TEXTS}.length === 2")
    await bob.click("#leave")
    await until(alice, f"!{MEMBERS}.includes('bob')")
    await until(alice, "document.getElementById('log').textContent.includes('bob left')")
    assert sorted(await alice.evaluate(MEMBERS)) == ["alice (you)", "carol"]


async def test_page_survives_a_server_restart_and_shows_missed_messages_once(
    browser: Any, demo_server: type[DemoServer]
) -> None:
    server = demo_server()
    page = await open_demo(browser, server, "name=alice")
    await say(page, "before")
    await until(page, f"{CHAT_TEXTS}.length === 1")
    # Retry every ~3 s, so that the page comes back after the messages below were sent.
    await page.evaluate(
        "(() => { const b = fastcommDemo.client.backoff;"
        " b.initial = b.maximum = 3; b.rand = () => 0.99; })()"
    )
    server.kill()
    await until(page, f"{STATE} === 'reconnecting'")
    await asyncio.to_thread(server.start)  # same port, new process: history is gone
    async with await fastcomm.Client.connect(server.url, reconnect=False) as other:
        await other.subscribe("demo:lobby")
        for text in ("missed 1", "missed 2", "missed 3"):
            data = {"kind": "chat", "session": "x", "name": "bob", "text": text}
            await other.publish("demo:lobby", data)
        await until(page, f"{STATE} === 'open'", timeout=20)
        await until(page, f"{CHAT_TEXTS}.length === 4")
        await other.publish(
            "demo:lobby", {"kind": "chat", "session": "x", "name": "bob", "text": "live"}
        )
        await until(page, f"{CHAT_TEXTS}.length === 5")
    await say(page, "after")
    await until(page, f"{CHAT_TEXTS}.length === 6")
    # A duplicate would have been sent before this round trip's publication came back.
    await say(page, "end")
    await until(page, f"{CHAT_TEXTS}.includes('end')")
    texts = await page.evaluate(CHAT_TEXTS)
    assert texts == ["before", "missed 1", "missed 2", "missed 3", "live", "after", "end"]
    assert await page.evaluate(STATE) == "open"
    # They came from history after the failed recovery, not live.
    log = await page.evaluate("document.getElementById('log').textContent")
    assert "reloaded after a server restart" in log
    assert log.index("reloaded") < log.index("missed 1")
