"""Channels over real sockets: pub/sub, ordering, presence, recovery, limits, slow consumers.

Each test starts a real server on port 0 in the test's event loop and talks to
it with the third-party ``websockets`` client (and, for the slow consumer, a
raw TCP socket that stops reading).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import websockets

import fastcomm
from fastcomm.channels.memory import MemoryBroker
from fastcomm.config import Namespace
from fastcomm.sessions.memory_store import MemorySessionStore

JSON, MSGPACK = "fastcomm.v1.json", "fastcomm.v1.msgpack"
TIMEOUT = 5.0


class Peer:
    """A fastcomm client over ``websockets``: requests, pushes and a backlog."""

    def __init__(self, ws: Any, binary: bool) -> None:
        self.ws = ws
        self.binary = binary
        self.backlog: deque[dict[str, Any]] = deque()
        self.ids = itertools.count(1)
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, query: str = "", *, binary: bool = False) -> Peer:
        ws = await websockets.connect(url + query, subprotocols=[MSGPACK if binary else JSON])
        peer = cls(ws, binary)
        peer.welcome = await peer.recv()
        assert peer.welcome["type"] == "welcome"
        return peer

    @property
    def session(self) -> str:
        return str(self.welcome["session"])

    @property
    def token(self) -> str:
        return str(self.welcome["resume_token"])

    async def send(self, **msg: Any) -> None:
        data = msgspec.msgpack.encode(msg) if self.binary else msgspec.json.encode(msg).decode()
        await self.ws.send(data)

    async def _read(self) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        decoded: dict[str, Any] = (msgspec.msgpack if self.binary else msgspec.json).decode(data)
        return decoded

    async def recv(self) -> dict[str, Any]:
        """The next message not yet consumed (pushes that arrived before a reply first)."""
        return self.backlog.popleft() if self.backlog else await self._read()

    async def request(self, **msg: Any) -> dict[str, Any]:
        """Send with a fresh id; return the reply with that id, keeping other messages."""
        rid = next(self.ids)
        await self.send(id=rid, **msg)
        while True:
            reply = await self._read()
            if reply.get("id") == rid:
                return reply
            self.backlog.append(reply)

    async def subscribe(self, channel: str, **extra: Any) -> dict[str, Any]:
        reply = await self.request(type="subscribe", channel=channel, **extra)
        assert reply["type"] == "subscribed", reply
        return reply

    async def messages(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` messages, all of which must be publications."""
        got = [await self.recv() for _ in range(n)]
        assert [m["type"] for m in got] == ["message"] * n, got
        return got

    async def nothing_pending(self) -> None:
        """Assert that nothing was sent before the reply to a ping sent now."""
        assert not self.backlog, self.backlog
        rid = next(self.ids)
        await self.send(type="ping", id=rid)
        assert await self._read() == {"type": "pong", "id": rid}

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake."""
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()


def offsets(messages: list[dict[str, Any]]) -> list[int]:
    return [m["offset"] for m in messages]


def tracked(app: fastcomm.App) -> asyncio.Queue[str]:
    """Session ids of connections as the server finishes with them."""
    gone: asyncio.Queue[str] = asyncio.Queue()
    app.on_disconnect(lambda conn: gone.put_nowait(conn.session_id))
    return gone


async def gone_session(gone: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(gone.get(), TIMEOUT)


@asynccontextmanager
async def serve(app: fastcomm.App | None = None, **options: Any) -> AsyncIterator[fastcomm.Server]:
    async with fastcomm.Server(app, port=0, **options) as server:
        yield server


def with_users(app: fastcomm.App) -> fastcomm.App:
    """Identify connections by the ``user`` query parameter."""

    @app.on_connect
    def connect(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
        return fastcomm.Identity(user=request.query.get("user"), meta={"ua": "test"})

    return app


# -- pub/sub -----------------------------------------------------------------------


async def test_server_without_app_offers_channels_to_two_clients() -> None:
    async with serve() as server:
        a = await Peer.connect(server.url)
        b = await Peer.connect(server.url)
        c = await Peer.connect(server.url, binary=True)
        first = await a.subscribe("chat:lobby")
        assert (first["offset"], first["recovered"], first["id"]) == (0, False, 1)
        assert (await b.subscribe("chat:lobby"))["epoch"] == first["epoch"]
        assert (await c.subscribe("chat:lobby"))["epoch"] == first["epoch"]
        assert server.node.channels.hub.count() == 1

        reply = await a.request(type="publish", channel="chat:lobby", data={"text": "hi"})
        assert reply == {"type": "published", "id": 2, "channel": "chat:lobby", "offset": 1}
        got = await a.recv()  # the publisher is a subscriber too
        expected = {
            "type": "message",
            "channel": "chat:lobby",
            "offset": 1,
            "epoch": got["epoch"],  # the stream's: offset 0 is followed by any epoch's 1
            "data": {"text": "hi"},
        }
        assert got == expected
        assert await b.recv() == expected
        assert await c.recv() == expected  # MessagePack subscriber, same shape

        d = await Peer.connect(server.url)
        await d.send(type="subscribe", channel="chat:lobby")  # no id: no success reply
        await d.nothing_pending()
        await b.send(type="publish", channel="chat:lobby", data="hello")  # no id: no reply
        for peer in (a, b, c, d):
            (msg,) = await peer.messages(1)
            assert (msg["offset"], msg["data"]) == (2, "hello")
        await b.nothing_pending()
        for peer in (a, b, c, d):
            await peer.close()


async def test_unsubscribe_stops_delivery() -> None:
    async with serve() as server:
        a, b = await Peer.connect(server.url), await Peer.connect(server.url)
        await a.subscribe("news")
        await b.subscribe("news")
        reply = await a.request(type="unsubscribe", channel="news")
        assert reply == {"type": "unsubscribed", "id": 2, "channel": "news"}
        await server.app.publish("news", 1)
        assert offsets(await b.messages(1)) == [1]
        await a.nothing_pending()
        reply = await a.request(type="unsubscribe", channel="news")
        assert (reply["type"], reply["code"]) == ("error", "not_subscribed")


async def test_ordering_under_concurrent_publishers() -> None:
    per_publisher, publishers = 50, 4
    async with serve() as server:
        sub = await Peer.connect(server.url)
        await sub.subscribe("race")
        pubs = [await Peer.connect(server.url) for _ in range(publishers)]
        for peer in pubs:
            await peer.subscribe("race")

        async def burst(index: int, peer: Peer) -> None:
            for seq in range(per_publisher):
                await peer.send(type="publish", channel="race", data=[index, seq])

        await asyncio.gather(*(burst(i, p) for i, p in enumerate(pubs)))
        total = per_publisher * publishers
        got = await sub.messages(total)
        assert offsets(got) == list(range(1, total + 1))  # strictly +1, no gap
        assert len({m["epoch"] for m in got}) == 1
        for index in range(publishers):
            seqs = [m["data"][1] for m in got if m["data"][0] == index]
            assert seqs == list(range(per_publisher))  # each publisher's order kept
        for peer in pubs:  # publishers are subscribers too: same order for everyone
            assert [m["data"] for m in await peer.messages(total)] == [m["data"] for m in got]


async def test_history_request() -> None:
    async with serve() as server:
        a = await Peer.connect(server.url)
        await a.subscribe("h")
        for i in range(5):
            await server.app.publish("h", i)
        received = await a.messages(5)
        reply = await a.request(type="history", channel="h", since=2, limit=2)
        assert reply["epoch"] == received[0]["epoch"]
        assert [(m["offset"], m["data"]) for m in reply["messages"]] == [(3, 2), (4, 3)]
        latest = await a.request(type="history", channel="h", limit=2)
        assert offsets(latest["messages"]) == [4, 5]
        everything = await a.request(type="history", channel="h")
        assert offsets(everything["messages"]) == [1, 2, 3, 4, 5]
        bad = await a.request(type="history", channel="h", limit=-1)
        assert (bad["code"], bad["details"]["path"]) == ("invalid_message", "$.limit")


# -- presence ----------------------------------------------------------------------


async def test_presence_lists_and_join_leave_events() -> None:
    app = with_users(fastcomm.App())
    namespaces = (
        Namespace(pattern="room:*", join_leave=True),
        Namespace(pattern="secret:*", presence=False),
    )
    async with serve(app, namespaces=namespaces) as server:
        alice = await Peer.connect(server.url, "?user=alice")
        bob = await Peer.connect(server.url, "?user=bob")
        await alice.subscribe("room:1")
        assert await alice.recv() == {
            "type": "join",
            "channel": "room:1",
            "session": alice.session,
            "user": "alice",
        }
        await bob.subscribe("room:1")
        bob_join = {"type": "join", "channel": "room:1", "session": bob.session, "user": "bob"}
        assert await alice.recv() == bob_join
        assert await bob.recv() == bob_join

        reply = await alice.request(type="presence", channel="room:1")
        members = sorted((m["user"], m["session"], m["meta"]) for m in reply["members"])
        assert members == [
            ("alice", alice.session, {"ua": "test"}),
            ("bob", bob.session, {"ua": "test"}),
        ]
        assert len(await server.app.presence("room:1")) == 2

        await bob.close()
        assert await alice.recv() == {
            "type": "leave",
            "channel": "room:1",
            "session": bob.session,
            "user": "bob",
        }
        reply = await alice.request(type="presence", channel="room:1")
        assert [m["user"] for m in reply["members"]] == ["alice"]

        await alice.subscribe("quiet")  # join/leave events are off by default
        carol = await Peer.connect(server.url, "?user=carol")
        await carol.subscribe("quiet")
        await alice.nothing_pending()
        reply = await alice.request(type="presence", channel="quiet")
        assert sorted(m["user"] for m in reply["members"]) == ["alice", "carol"]

        await alice.subscribe("secret:x")
        reply = await alice.request(type="presence", channel="secret:x")
        assert (reply["type"], reply["code"]) == ("error", "forbidden")
        assert await server.app.presence("secret:x") == []


# -- recovery ----------------------------------------------------------------------


async def test_resume_after_abrupt_disconnect_recovers_exactly_the_missed() -> None:
    app = fastcomm.App()
    gone = tracked(app)
    async with serve(app) as server:
        a = await Peer.connect(server.url)
        other = await Peer.connect(server.url)
        await a.subscribe("feed")
        await other.subscribe("feed")
        for i in range(3):
            await server.app.publish("feed", i)
        received = await a.messages(3)
        assert offsets(received) == [1, 2, 3]
        a.abort()
        assert await gone_session(gone) == a.session
        for i in range(3, 8):
            await server.app.publish("feed", i)

        back = await Peer.connect(server.url, f"?resume={a.token}")
        assert back.welcome["resumed"] is True and back.session == a.session
        assert await back.recv() == {
            "type": "subscribed",
            "id": None,
            "channel": "feed",
            "offset": 8,
            "epoch": received[0]["epoch"],
            "recovered": True,
        }
        missed = await back.messages(5)
        assert offsets(missed) == [4, 5, 6, 7, 8]
        assert [m["data"] for m in missed] == [3, 4, 5, 6, 7]
        await back.nothing_pending()
        await server.app.publish("feed", "live")
        assert offsets(await back.messages(1)) == [9]
        assert offsets(await other.messages(9)) == list(range(1, 10))


async def test_resume_while_publications_continue_has_no_gap_and_no_duplicate() -> None:
    app = fastcomm.App()
    gone = tracked(app)
    async with serve(app, history_size=1000) as server:
        a = await Peer.connect(server.url)
        await a.subscribe("busy")
        for i in range(50):
            await server.app.publish("busy", i)
        before = await a.messages(50)
        a.abort()
        await gone_session(gone)

        async def publisher() -> None:
            for i in range(50, 250):
                await server.app.publish("busy", i)
                await asyncio.sleep(0)

        task = asyncio.create_task(publisher())
        back = await Peer.connect(server.url, f"?resume={a.token}")
        subscribed = await back.recv()
        assert subscribed["type"] == "subscribed" and subscribed["recovered"] is True
        after = await back.messages(200)
        await task
        assert offsets(before + after) == list(range(1, 251))
        await back.nothing_pending()


async def test_recovered_false_once_history_is_trimmed() -> None:
    app = fastcomm.App()
    gone = tracked(app)
    async with serve(app, history_size=3) as server:
        a = await Peer.connect(server.url)
        await a.subscribe("feed")
        a.abort()
        await gone_session(gone)
        for i in range(5):
            top = await server.app.publish("feed", i)
        back = await Peer.connect(server.url, f"?resume={a.token}")
        assert back.welcome["resumed"] is True
        assert await back.recv() == {
            "type": "subscribed",
            "id": None,
            "channel": "feed",
            "offset": 5,
            "epoch": top.epoch,
            "recovered": False,
        }
        await back.nothing_pending()
        await server.app.publish("feed", "live")
        assert offsets(await back.messages(1)) == [6]


@pytest.mark.parametrize("expired", [False, True])
async def test_recovered_false_once_history_ttl_passed(expired: bool) -> None:
    now = [0.0]
    app = fastcomm.App()
    app.use_broker(MemoryBroker(clock=lambda: now[0]))
    gone = tracked(app)
    async with serve(app, history_ttl=10.0) as server:
        a = await Peer.connect(server.url)
        await a.subscribe("feed")
        a.abort()
        await gone_session(gone)
        await server.app.publish("feed", 1)
        await server.app.publish("feed", 2)
        now[0] += 11.0 if expired else 9.0
        back = await Peer.connect(server.url, f"?resume={a.token}")
        subscribed = await back.recv()
        assert (subscribed["recovered"], subscribed["offset"]) == (not expired, 2)
        if not expired:
            assert offsets(await back.messages(2)) == [1, 2]
        await back.nothing_pending()


async def test_after_session_ttl_the_session_is_new_and_empty() -> None:
    app = fastcomm.App()
    gone = tracked(app)
    async with serve(app, session_ttl=0.2) as server:
        a = await Peer.connect(server.url)
        await a.subscribe("feed")
        await a.close()
        await gone_session(gone)
        later = time.monotonic() + 1.0  # past the record's 0.2 s
        store = server.node.broker.sessions
        assert isinstance(store, MemorySessionStore)
        store.clock = lambda: later
        await server.app.publish("feed", 1)
        back = await Peer.connect(server.url, f"?resume={a.token}")
        assert back.welcome["resumed"] is False and back.session != a.session
        await back.nothing_pending()


async def test_subscribe_with_recover_on_a_new_connection() -> None:
    async with serve() as server:
        first = await server.app.publish("feed", 0)
        for i in range(1, 5):
            await server.app.publish("feed", i)
        a = await Peer.connect(server.url)
        reply = await a.subscribe("feed", recover={"offset": 2, "epoch": first.epoch})
        assert (reply["recovered"], reply["offset"]) == (True, 5)
        assert [m["data"] for m in await a.messages(3)] == [2, 3, 4]
        b = await Peer.connect(server.url)
        reply = await b.subscribe("feed", recover={"offset": 2, "epoch": "another"})
        assert (reply["recovered"], reply["offset"], reply["epoch"]) == (False, 5, first.epoch)
        await b.nothing_pending()


# -- authorization and limits -------------------------------------------------------


async def test_authorization_denials() -> None:
    app = with_users(fastcomm.App())

    @app.authorize_subscribe
    def may_subscribe(conn: fastcomm.Connection, channel: str) -> bool:
        if channel.startswith("vip:"):
            raise fastcomm.WireError("forbidden", "members only", {"channel": channel})
        return not channel.startswith("private:") or channel == f"private:{conn.user}"

    @app.authorize_publish
    async def may_publish(conn: fastcomm.Connection, channel: str, data: Any) -> bool:
        await asyncio.sleep(0)
        return data != "spam"

    namespaces = (Namespace(pattern="news:*", client_publish=False),)
    async with serve(app, namespaces=namespaces) as server:
        alice = await Peer.connect(server.url, "?user=alice")
        denied = await alice.request(type="subscribe", channel="private:bob")
        assert (denied["type"], denied["code"]) == ("error", "forbidden")
        vip = await alice.request(type="subscribe", channel="vip:lounge")
        assert (vip["code"], vip["message"]) == ("forbidden", "members only")
        await alice.subscribe("private:alice")
        assert server.node.channels.hub.count() == 1

        spam = await alice.request(type="publish", channel="private:alice", data="spam")
        assert (spam["type"], spam["code"]) == ("error", "forbidden")
        ok = await alice.request(type="publish", channel="anywhere", data="fine")
        assert ok["type"] == "published"  # with a publish hook, no subscription is needed
        news = await alice.request(type="publish", channel="news:today", data="fine")
        assert (news["code"], news["details"]) == ("forbidden", {"channel": "news:today"})
        await alice.nothing_pending()
        history = await server.node.channels.broker.history("anywhere")
        assert [m.data for m in history.publications] == ["fine"]


async def test_limits_and_channel_names() -> None:
    async with serve(max_subscriptions=2, max_channel_length=12) as server:
        a = await Peer.connect(server.url)
        await a.subscribe("one")
        await a.subscribe("two")
        limit = await a.request(type="subscribe", channel="three")
        assert (limit["code"], limit["details"]) == ("limit_exceeded", {"max": 2})
        again = await a.request(type="subscribe", channel="one")
        assert again["code"] == "already_subscribed"
        await a.request(type="unsubscribe", channel="one")
        await a.subscribe("three")

        for bad in ("x" * 13, "two words", "", "ü"):
            reply = await a.request(type="subscribe", channel=bad)
            assert (reply["code"], reply["details"]["path"]) == ("invalid_message", "$.channel")
            reply = await a.request(type="publish", channel=bad, data=1)
            assert reply["code"] == "invalid_message"
        assert "x" * 12 not in server.node.channels.hub.channels

        for kind in ("presence", "history", "unsubscribe", "publish"):
            reply = await a.request(type=kind, channel="elsewhere")
            assert (reply["type"], reply["code"]) == ("error", "not_subscribed"), kind
        await a.send(type="publish", channel="elsewhere", data=1)  # no id: error with id null
        reply = await a.recv()
        assert (reply["id"], reply["code"]) == (None, "not_subscribed")


# -- server-side API -----------------------------------------------------------------


class Notice(fastcomm.Message, tag="notice"):
    text: str


async def test_server_api_push_and_disconnect() -> None:
    app = with_users(fastcomm.App())
    gone = tracked(app)
    async with serve(app) as server:
        phone = await Peer.connect(server.url, "?user=alice")
        laptop = await Peer.connect(server.url, "?user=alice", binary=True)
        bob = await Peer.connect(server.url, "?user=bob")
        assert await app.push("alice", Notice(text="hi")) == 2
        for peer in (phone, laptop):
            assert await peer.recv() == {"type": "notice", "text": "hi"}
        assert await app.push(bob.session, {"type": "notice", "text": "you"}) == 1
        assert await bob.recv() == {"type": "notice", "text": "you"}
        assert await app.push("nobody", Notice(text="x")) == 0
        await phone.nothing_pending()

        await phone.subscribe("room")
        assert await app.disconnect(phone.session) is True
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await phone.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
        await gone_session(gone)
        assert await app.disconnect(phone.session) is False
        assert await app.presence("room") == []
        back = await Peer.connect(server.url, f"?resume={phone.token}&user=alice")
        assert back.welcome["resumed"] is False  # revoked
        with pytest.raises(ValueError, match="characters"):
            await app.publish("bad name", 1)
    with pytest.raises(RuntimeError):
        await fastcomm.App().publish("x", 1)


# -- slow consumers ----------------------------------------------------------------


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


async def raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client on a socket with a tiny receive buffer (stops reading at will)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_slow_subscriber_is_closed_with_4008_while_others_get_everything() -> None:
    app = fastcomm.App()
    gone = tracked(app)
    options = {"max_outbound_buffer": 256 * 1024, "history_size": 100_000, "history_ttl": 600.0}
    async with serve(app, **options) as server:
        reader, writer = await raw_client(server.port)
        opcode, payload = await read_frame(reader)
        welcome = msgspec.json.decode(payload)
        writer.write(client_frame(b'{"type":"subscribe","id":1,"channel":"feed"}'))
        opcode, payload = await read_frame(reader)
        assert msgspec.json.decode(payload)["type"] == "subscribed"
        fast = await Peer.connect(server.url)
        await fast.subscribe("feed")
        # From here on the raw client reads nothing.

        pad, published, received = "x" * 4096, 0, []
        while server.node.stats.slow_consumers == 0 or published % 100:
            assert published < 20_000, "the slow subscriber was never closed"
            for _ in range(20):
                published += 1
                await app.publish("feed", {"n": published, "pad": pad})
            received += await fast.messages(20)
        assert offsets(received) == list(range(1, published + 1))
        assert server.node.stats.slow_consumers == 1

        slow_offsets, code = [], None
        while code is None:
            opcode, payload = await asyncio.wait_for(read_frame(reader), TIMEOUT)
            if opcode == 8:
                (code,) = struct.unpack("!H", payload[:2])
            else:
                slow_offsets.append(msgspec.json.decode(payload)["offset"])
        assert code == 4008
        last = len(slow_offsets)
        assert 0 < last < published and slow_offsets == list(range(1, last + 1))
        writer.write(client_frame(struct.pack("!H", 1000), opcode=8))
        writer.close()
        assert await gone_session(gone) == welcome["session"]

        # It resumes exactly where its delivery stopped.
        back = await Peer.connect(server.url, f"?resume={welcome['resume_token']}")
        subscribed = await back.recv()
        assert (subscribed["recovered"], subscribed["offset"]) == (True, published)
        missed = await back.messages(published - last)
        assert offsets(missed) == list(range(last + 1, published + 1))
        await back.nothing_pending()


async def test_a_publish_retried_with_its_idempotency_key_is_published_once() -> None:
    async with serve() as server:
        a = await Peer.connect(server.url)
        await a.subscribe("feed")
        first = await a.request(type="publish", channel="feed", data=1, idempotency_key="k")
        retry = await a.request(type="publish", channel="feed", data=1, idempotency_key="k")
        assert first["type"] == retry["type"] == "published"
        assert first["offset"] == retry["offset"] == 1
        assert offsets(await a.messages(1)) == [1]
        await a.nothing_pending()  # the retry was not delivered again
        again = await server.app.publish("feed", 1, idempotency_key="k")
        assert again.offset == 1  # the same window, whoever publishes
        for bad in ("", "x" * 129, 7):
            reply = await a.request(type="publish", channel="feed", data=1, idempotency_key=bad)
            assert reply["code"] == "invalid_message", reply
            assert reply["details"]["path"] == "$.idempotency_key"
        await a.nothing_pending()
