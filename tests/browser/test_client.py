"""The browser client in real Chromium against real servers on free ports."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

import fastcomm
from fastcomm.auth import JWT
from tests.browser.pages import client_page, until
from tests.integration.conftest import running
from tests.integration.test_limits import Flood, flood


class Echo(fastcomm.Message, tag="echo"):
    value: Any = None


app = fastcomm.App()


@app.on(Echo)
def echo(msg: Echo, conn: fastcomm.Connection) -> Any:
    return msg.value


app.on(Flood)(flood)  # pushes until the outbound bound says no


@pytest.mark.parametrize("subprotocol", ["json", "msgpack"])
async def test_call_errors_and_channels(browser: Any, subprotocol: str) -> None:
    async with running(app) as server:
        page = await client_page(browser, server.port)
        await page.evaluate(f"connect({{subprotocol: '{subprotocol}'}}, ['chat'])")
        assert await page.evaluate("client.subprotocol") == subprotocol
        value = {"a": 1, "s": "héllo", "list": [1, 2.5, None, True], "nested": {"k": "v"}}
        assert await page.evaluate("(v) => client.call({type: 'echo', value: v})", value) == value
        failed = await page.evaluate(
            "client.call({type: 'nope'}).then(() => null,"
            " (e) => ({name: e.name, code: e.code, details: e.details}))"
        )
        assert failed == {
            "name": "RequestFailed",
            "code": "unknown_type",
            "details": {"path": "$.type"},
        }
        offset = await page.evaluate("client.publish('chat', {text: 'hi'})")
        assert offset == 1
        await until(page, "pubs.chat.length === 1")
        assert await page.evaluate("pubs.chat[0][2]") == {"text": "hi"}
        members = await page.evaluate("subs.chat.presence()")
        assert [m["session"] for m in members] == [await page.evaluate("client.session")]
        history = await page.evaluate("subs.chat.history({since: 0})")
        assert [m["offset"] for m in history["messages"]] == [1]
        denied = await page.evaluate("client.presence('other').catch((e) => e.code)")
        assert denied == "not_subscribed"
        await page.evaluate("subs.chat.unsubscribe()")
        assert await page.evaluate("client.subscriptions.size") == 0


async def test_msgpack_carries_64_bit_integers_and_bytes(browser: Any) -> None:
    async with running(app) as server:
        page = await client_page(browser, server.port)
        await page.evaluate("connect({subprotocol: 'msgpack'})")
        result = await page.evaluate(
            """async () => {
              const big = await client.call({type: 'echo', value: 2n ** 63n - 1n});
              const neg = await client.call({type: 'echo', value: -(2n ** 62n) - 3n});
              const bin = await client.call({type: 'echo', value: new Uint8Array([0, 1, 255])});
              return [typeof big, String(big), String(neg), bin instanceof Uint8Array, [...bin]];
            }"""
        )
        assert result == ["bigint", str(2**63 - 1), str(-(2**62) - 3), True, [0, 1, 255]]


async def test_resume_recovers_what_was_missed_once_in_order(browser: Any) -> None:
    async with running(app) as server:
        page = await client_page(browser, server.port)
        session = await page.evaluate("connect({}, ['feed'])")
        for i in range(3):
            await server.app.publish("feed", i)
        await until(page, "pubs.feed.length === 3")
        assert await server.app.disconnect(session, code=1011)
        for i in range(3, 8):  # while the page is away
            await server.app.publish("feed", i)
        await until(page, "events.some((e) => e.event === 'open' && e.reconnects === 1)")
        await server.app.publish("feed", 8)
        await until(page, "pubs.feed.length >= 9")
        pubs = await page.evaluate("pubs.feed")
        assert [p[1] for p in pubs] == list(range(1, 10))
        assert [p[2] for p in pubs] == list(range(9))
        opened = await page.evaluate("events.filter((e) => e.event === 'open')")
        assert opened[-1]["resumed"] is True
        assert await page.evaluate("client.session") == session
        assert await page.evaluate("subs.feed.recovered") is True


async def test_slow_consumer_4008_reconnects_and_resumes(browser: Any) -> None:
    async with running(app, max_outbound_buffer=64 * 1024) as server:
        page = await client_page(browser, server.port)
        session = await page.evaluate("connect({}, ['feed'])")
        # The page stops reading while the server writes 20 MB: Chromium's flow control
        # then leaves the data in the server's buffer, past max_outbound_buffer.
        code = await page.evaluate(
            """() => {
              const reply = client.call({type: 'flood', count: 400, size: 50000}).then(
                () => 'answered', (e) => e.code);
              const until = Date.now() + 1500;
              while (Date.now() < until) {}  // busy: nothing is read meanwhile
              return reply;
            }"""
        )
        assert code == 4008
        await until(page, "events.some((e) => e.event === 'open' && e.reconnects === 1)")
        events = await page.evaluate("events.map((e) => [e.event, e.code ?? e.resumed ?? null])")
        assert ["reconnecting", 4008] in events
        assert events[-1] == ["open", True]
        assert await page.evaluate("client.session") == session
        assert server.node.stats.slow_consumers == 1
        await server.app.publish("feed", "after")
        await until(page, "pubs.feed.length === 1")
        assert await page.evaluate("pubs.feed[0][2]") == "after"


async def test_rate_limit_4029_backs_off_then_resumes(browser: Any) -> None:
    async with running(app, rate_limit=1, rate_burst=1, rate_limit_close_after=2) as server:
        page = await client_page(browser, server.port)
        session = await page.evaluate("connect({backoffInitial: 0.05, backoffMax: 5})")
        await page.evaluate("for (let i = 0; i < 4; i++) client.send({type: 'ping'})")
        await until(page, "events.some((e) => e.event === 'open' && e.reconnects === 1)")
        events = await page.evaluate("events")
        assert {"event": "error", "code": "rate_limited"} in events
        waits = [e for e in events if e["event"] == "reconnecting"]
        assert waits[0]["code"] == 4029
        assert waits[0]["delay"] >= 1.0  # the pause after 4029 comes on top of the backoff
        assert await page.evaluate("client.session") == session


async def test_revoked_session_4003_is_final(browser: Any) -> None:
    async with running(app) as server:
        page = await client_page(browser, server.port)
        session = await page.evaluate("connect({}, ['feed'])")
        assert await server.app.disconnect(session)  # 4003
        await until(page, "client.state === 'closed'")
        events = await page.evaluate("events.map((e) => [e.event, e.code ?? null])")
        assert events[-1] == ["closed", 4003]
        assert not any(name == "reconnecting" for name, _ in events)
        assert await page.evaluate("client.call({type: 'echo'}).catch((e) => e.code)") == 4003


async def test_refused_upgrade_fails_the_first_connect_and_tokens_refresh(browser: Any) -> None:
    secret = "browser-test-secret-long-enough-for-hs256"
    secured = fastcomm.App()
    JWT(secret).install(secured)
    good = jwt.encode({"sub": "alice"}, secret, algorithm="HS256")
    fresh = jwt.encode({"sub": "alice", "v": 2}, secret, algorithm="HS256")
    async with running(secured) as server:
        page = await client_page(browser, server.port)
        refused = await page.evaluate(
            "connect({token: 'not-a-jwt'}).then(() => null, (e) => [e.name, e.code, client.state])"
        )
        assert refused == ["ConnectionClosed", 1006, "closed"]  # HTTP 401, as browsers show it
        assert server.node.stats.handshake_rejects[401] == 1
        # A token function is asked again before every attempt: refresh on reconnect.
        await page.evaluate(
            "(tokens) => { window.tokens = tokens;"
            " return connect({token: () => window.tokens.shift()}, ['feed']); }",
            [good, fresh],
        )
        session = await page.evaluate("client.session")
        assert await server.app.disconnect(session, code=1011)
        await until(page, "events.some((e) => e.event === 'open' && e.reconnects === 1)")
        assert await page.evaluate("[client.session, tokens.length]") == [session, 0]


async def test_the_resume_token_never_travels_in_the_url(browser: Any) -> None:
    async with running(app) as server:
        page = await client_page(browser, server.port)
        urls: list[str] = []
        page.on("websocket", lambda ws: urls.append(ws.url))
        session = await page.evaluate("connect({}, ['feed'])")
        token = await page.evaluate("client.resumeToken")
        assert await server.app.disconnect(session, code=1011)  # dropped; the server lives on
        await until(page, "events.some((e) => e.event === 'open' && e.reconnects === 1)")
        (conn,) = server.node.connections
        conn.transport.abort()  # and once more without a close handshake
        await until(page, "events.some((e) => e.event === 'open' && e.reconnects === 2)")
        opened = await page.evaluate("events.filter((e) => e.event === 'open')")
        assert [e["resumed"] for e in opened] == [False, True, True]
        assert await page.evaluate("client.session") == session
        assert await page.evaluate("client.resumeToken") not in (token, None)
        await server.app.publish("feed", "after")
        await until(page, "pubs.feed.length === 1")
        assert (len(server.node.sessions), server.node.sessions.stored()) == (1, 1)  # its record

        # The resume option of a new client: also sent in the first message.
        token = await page.evaluate("client.resumeToken")
        await page.evaluate("client.close()")
        await until(page, "client.state === 'closed'")
        other = await client_page(browser, server.port)
        other.on("websocket", lambda ws: urls.append(ws.url))
        assert await other.evaluate("(t) => connect({resume: t})", token) == session
        assert await other.evaluate("client.welcome.resumed") is True
        assert len(urls) == 4
        assert not any("resume" in url for url in urls), urls
