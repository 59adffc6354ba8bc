"""Resuming with the token in the first message (``resume``) instead of the URL.

Real servers on free ports, the third-party ``websockets`` client (through
the ``Peer`` of the channel tests). The upgrade carries no token: the
connection is welcomed with a new session, then its first message resumes
the old one in place, or leaves the new one as it was.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

import fastcomm
from fastcomm.config import Namespace
from fastcomm.node.opening import NOT_FIRST
from tests.integration.conftest import eventually, resumable, status_of
from tests.integration.test_channels import (
    Peer,
    gone_session,
    offsets,
    serve,
    tracked,
    with_users,
)

ROOMS = (Namespace(pattern="room:*", join_leave=True),)


def connection_of(server: fastcomm.Server, session: str) -> fastcomm.Connection:
    (conn,) = [c for c in server.node.connections if c.session_id == session]
    return conn


async def test_first_message_resumes_the_session_with_its_subscriptions_and_a_new_token() -> None:
    app = with_users(fastcomm.App())
    gone = tracked(app)
    async with serve(app, namespaces=ROOMS) as server:
        watcher = await Peer.connect(server.url, "?user=bob")
        await watcher.subscribe("room:1")
        assert (await watcher.recv())["session"] == watcher.session  # its own join
        a = await Peer.connect(server.url, "?user=alice")
        await a.subscribe("room:1")
        assert (await watcher.recv())["session"] == a.session
        a.abort()
        assert await gone_session(gone) == a.session
        assert await watcher.recv() == {
            "type": "leave",
            "channel": "room:1",
            "session": a.session,
            "user": "alice",
        }
        for i in range(3):
            await app.publish("room:1", i)
        published = await watcher.messages(3)
        assert offsets(published) == [1, 2, 3]

        back = await Peer.connect(server.url, "?user=alice")  # no token in the URL
        fresh = back.session
        reply = await back.request(type="resume", token=a.token)
        token = reply["resume_token"]
        assert reply == {
            "type": "resumed",
            "id": 1,
            "session": a.session,
            "resume_token": token,
            "resumed": True,
        }
        assert token not in (a.token, back.token)  # rotated: one use per token
        assert await back.recv() == {
            "type": "subscribed",
            "id": None,
            "channel": "room:1",
            "offset": 3,
            "epoch": published[0]["epoch"],
            "recovered": True,
        }
        assert [m["data"] for m in await back.messages(3)] == [0, 1, 2]
        rejoined = {"type": "join", "channel": "room:1", "session": a.session, "user": "alice"}
        assert await back.recv() == rejoined
        assert await watcher.recv() == rejoined  # the new session never showed up
        assert connection_of(server, a.session).meta == {"ua": "test"}

        # The new session of the welcome is gone without a trace.
        assert server.node.sessions.get(fresh) is None
        assert await app.push(fresh, {"type": "notice"}) == 0
        assert await app.disconnect(fresh) is False
        status = await status_of(server)
        assert (status["sessions"], status["sessions_resumable"]) == (2, 2)  # live records
        members = {m.session for m in await app.presence("room:1")}
        assert members == {watcher.session, a.session}
        assert gone.empty()  # no disconnect hook for the swap: the connection stays
        again = await back.request(type="resume", token=token)
        assert (again["code"], again["message"]) == ("invalid_message", NOT_FIRST)

        await back.close()
        assert await gone_session(gone) == a.session  # one hook per connection
        assert (await watcher.recv())["type"] == "leave"
        await watcher.nothing_pending()
        for spent in (a.token, back.token):  # neither the old token nor the welcome's
            by_message = await Peer.connect(server.url, "?user=alice")
            refused = await by_message.request(type="resume", token=spent)
            assert (refused["resumed"], refused["session"]) == (False, by_message.session)
            by_url = await Peer.connect(server.url, f"?user=alice&resume={spent}")
            assert by_url.welcome["resumed"] is False
        home = await Peer.connect(server.url, f"?user=alice&resume={token}")  # the new one
        assert home.welcome["resumed"] is True and home.session == a.session


async def test_resume_after_another_message_is_refused_and_the_connection_stays_usable() -> None:
    async with serve() as server:
        old = await Peer.connect(server.url)
        await old.close()
        await eventually(lambda: resumable(server) == 1)

        late = await Peer.connect(server.url)
        assert (await late.request(type="ping"))["type"] == "pong"
        refused = await late.request(type="resume", token=old.token)
        assert refused == {
            "type": "error",
            "id": 2,
            "code": "invalid_message",
            "message": NOT_FIRST,
            "details": {"path": "$"},
        }
        assert (await late.request(type="ping"))["type"] == "pong"  # still open
        await late.subscribe("c")
        assert late.ws.close_code is None

        # Also once the rate bucket is full again: the connection knows a message came.
        idle = await Peer.connect(server.url)
        await idle.send(type="ping", id=1)
        assert (await idle.recv())["type"] == "pong"
        conn = connection_of(server, idle.session)
        burst = server.node.config.rate_burst
        await eventually(lambda: conn.rate_tokens == burst, 5, "the bucket is full again")
        refused = await idle.request(type="resume", token=old.token)
        assert (refused["code"], refused["message"]) == ("invalid_message", NOT_FIRST)

        # A connection that resumed in the upgrade has no new session to give up.
        other = await Peer.connect(server.url)
        await other.close()
        await eventually(lambda: resumable(server) == 2)
        upgraded = await Peer.connect(server.url, f"?resume={other.token}")
        assert upgraded.welcome["resumed"] is True
        refused = await upgraded.request(type="resume", token=old.token)
        assert (refused["code"], refused["message"]) == ("invalid_message", NOT_FIRST)

        # None of the refusals spent the token.
        assert resumable(server) == 1
        first = await Peer.connect(server.url)
        resumed = await first.request(type="resume", token=old.token)
        assert (resumed["resumed"], resumed["session"]) == (True, old.session)


async def test_unknown_token_keeps_the_new_session_of_the_welcome() -> None:
    async with serve() as server:
        peer = await Peer.connect(server.url)
        await peer.send(type="resume", token="no-such-token")  # no id: answered with id null
        assert await peer.recv() == {
            "type": "resumed",
            "id": None,
            "session": peer.session,
            "resume_token": peer.token,
            "resumed": False,
        }
        await peer.subscribe("c")
        published = await peer.request(type="publish", channel="c", data="hi")
        assert published["offset"] == 1
        assert (await peer.messages(1))[0]["data"] == "hi"
        assert (await status_of(server))["sessions"] == 1
        peer.abort()
        await eventually(lambda: resumable(server) == 1)
        back = await Peer.connect(server.url)  # the kept session resumes with its token
        reply = await back.request(type="resume", token=peer.token)
        assert (reply["resumed"], reply["session"]) == (True, peer.session)
        assert (await back.recv())["type"] == "subscribed"

        empty = await Peer.connect(server.url)
        assert (await empty.request(type="resume", token=""))["resumed"] is False
        for token, path in ((7, "$.token"), (None, "$.token")):
            bad = await Peer.connect(server.url)
            reply = await bad.request(type="resume", token=token)
            assert (reply["code"], reply["details"]["path"]) == ("invalid_message", path)
        missing = await Peer.connect(server.url)
        reply = await missing.request(type="resume")
        assert reply["code"] == "invalid_message" and "token" in reply["details"]["reason"]


async def test_another_users_token_does_not_resume_and_stays_its_owners() -> None:
    app = with_users(fastcomm.App())
    async with serve(app) as server:
        alice = await Peer.connect(server.url, "?user=alice")
        await alice.subscribe("inbox")
        alice.abort()
        await eventually(lambda: resumable(server) == 1)
        for query in ("?user=mallory", ""):  # another user, and an anonymous connection
            thief = await Peer.connect(server.url, query)
            reply = await thief.request(type="resume", token=alice.token)
            assert (reply["resumed"], reply["session"]) == (False, thief.session)
            await thief.nothing_pending()  # nothing of alice's was restored
        assert resumable(server) == 1
        back = await Peer.connect(server.url, "?user=alice")
        reply = await back.request(type="resume", token=alice.token)
        assert (reply["resumed"], reply["session"]) == (True, alice.session)
        assert (await back.recv())["channel"] == "inbox"


class Slow(fastcomm.Message, tag="slow"):
    seconds: float


async def test_resume_while_draining_is_unavailable() -> None:
    app = fastcomm.App()

    @app.on(Slow)
    async def slow(msg: Slow, conn: fastcomm.Connection) -> str:
        await asyncio.sleep(msg.seconds)
        return "done"

    server = fastcomm.Server(app, port=0, drain_timeout=5)
    await server.start()
    async with websockets.connect(server.url) as busy, websockets.connect(server.url) as ws:
        await busy.recv()
        welcome = json.loads(await ws.recv())
        await busy.send('{"type":"slow","id":1,"seconds":0.5}')
        await eventually(lambda: len(server.node.router.inflight) == 1)
        stopping = asyncio.create_task(server.stop())
        await eventually(lambda: server.node.draining)
        await ws.send(json.dumps({"type": "resume", "id": 3, "token": welcome["resume_token"]}))
        refused = json.loads(await ws.recv())
        assert (refused["id"], refused["code"]) == (3, "unavailable")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
        await stopping
