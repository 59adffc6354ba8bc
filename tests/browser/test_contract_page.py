"""``/docs``: the contract's page in real Chromium, offline, with its "try it" panel."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from fastcomm.loader import load_app
from fastcomm.loadgen.target import free_port
from tests.browser.conftest import ROOT, DemoServer
from tests.browser.pages import until
from tests.waiting import eventually

READY = "document.body.dataset.ready === 'true'"
CARD_FIELDS = "[...document.querySelectorAll('#message-Add td.name')].map((e) => e.textContent)"


async def open_docs(browser: Any, server: DemoServer) -> tuple[Any, list[str]]:
    page = await browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda msg: print("console:", msg.text))
    await page.goto(f"{server.http}/docs")
    await until(page, READY)
    return page, requested


async def test_the_page_lists_the_messages_and_try_it_sends_add(
    browser: Any, demo_server: type[DemoServer]
) -> None:
    server = demo_server("examples/app.py:app")
    page, requested = await open_docs(browser, server)
    text = await page.inner_text("#messages")
    for shown in ("add", "shout", "echoed", "Add two integers.", "subscribe", "welcome"):
        assert shown in text, shown
    assert await page.evaluate(CARD_FIELDS) == ["type", "a", "b", "id"]
    assert "unknown_type" in await page.inner_text("#type-ErrorReply")
    assert await page.input_value("#message") == '{"type":"add","a":0,"b":0}'  # a first sample
    await page.fill("#token", "alice")
    await page.click("#connect")
    await until(page, "document.getElementById('state').dataset.state === 'open'")
    await page.fill("#message", '{"type": "add", "a": 1, "b": 2}')
    await page.click("#send")
    assert await until(page, "document.getElementById('result').textContent") == "3"
    log = await page.inner_text("#log")
    assert '"type":"result"' in log and '"id":1' in log
    # Self-contained: the page loaded nothing from anywhere but the server.
    assert requested and all(url.startswith(server.http) for url in requested), requested


async def test_try_it_fills_a_sample_and_shows_errors(
    browser: Any, demo_server: type[DemoServer]
) -> None:
    server = demo_server("tests/contract_app.py:app")
    page, _ = await open_docs(browser, server)
    assert await page.inner_text("#title") == "Orders 2.1.0"
    quantity = await page.inner_text("#type-Item")
    assert "minimum: 1" in quantity and "maximum: 100" in quantity and "3" in quantity
    await page.click("#message-GetOrder button.try")
    assert await page.input_value("#message") == '{"type":"get_order","order":""}'
    await page.click("#connect")
    await until(page, "document.getElementById('state').dataset.state === 'open'")
    await page.fill("#message", '{"type": "get_order"}')
    await page.click("#send")
    result = await until(page, "document.getElementById('result').textContent")
    assert result.startswith("error: invalid_message"), result


async def test_under_an_asgi_mount_the_page_talks_below_the_mount(
    browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FASTCOMM_CONFIG", raising=False)
    for name in [n for n in os.environ if n.startswith("FASTCOMM_")]:
        monkeypatch.delenv(name)
    realtime = load_app(str(ROOT / "examples" / "app.py") + ":app")
    api = FastAPI()
    api.mount("/realtime", realtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/realtime/docs")
        await until(page, READY)
        await page.click("#connect")
        await until(page, "document.getElementById('state').dataset.state === 'open'")
        await page.fill("#message", '{"type": "add", "a": 1, "b": 2}')
        await page.click("#send")
        assert await until(page, "document.getElementById('result').textContent") == "3"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
