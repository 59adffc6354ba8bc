"""fastcomm.client.Client against a real fastcomm server over real sockets.

A few tests talk to a minimal picows server instead, to make the server send
what a fastcomm server never sends (fragmented frames, undecodable data).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
import pytest
from picows import (
    WSMsgType,
    WSTransport,
)

import fastcomm
from fastcomm.client import Client, HandshakeFailed
from fastcomm.protocol.channel_messages import Publication
from fastcomm.protocol.messages import ErrorReply, Ping, Pong, Result, Welcome
from tests.integration.fakeserver import FakeServer, Peer
from tests.waiting import eventually

JSON = "fastcomm.v1.json"
MSGPACK = "fastcomm.v1.msgpack"


# -- application under test ---------------------------------------------------------
class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


class Mul(fastcomm.Message, tag="mul"):
    a: int
    b: int


class Echo(fastcomm.Message, tag="echo"):
    value: Any = None
    delay: float = 0.0


class Boom(fastcomm.Message, tag="boom"):
    pass


class Whoami(fastcomm.Message, tag="whoami"):
    pass


class Poke(fastcomm.Message, tag="poke"):
    text: str


class Notice(fastcomm.Message, tag="notice"):
    """Pushed by the server in answer to Poke."""

    text: str
    n: int


class Kick(fastcomm.Message, tag="kick"):
    code: int
    reason: str = ""


class Hang(fastcomm.Message, tag="hang"):
    pass


class Drop(fastcomm.Message, tag="drop"):
    pass


class Nope(fastcomm.Message, tag="nope"):
    """Not registered on the server."""


class BadAdd(fastcomm.Message, tag="add"):
    """Same tag as Add, wrong schema for ``b``."""

    a: int
    b: str


@dataclass
class State:
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    transports: list[WSTransport] = field(default_factory=list)


def build_app(state: State) -> fastcomm.App:
    app = fastcomm.App()

    @app.on_connect
    def connect(request: fastcomm.ConnectRequest) -> fastcomm.Identity | None:
        if request.headers.get("X-Deny"):
            raise fastcomm.Rejected(403, "forbidden")
        if request.token is None:
            return None
        if request.token != "good":
            raise fastcomm.Rejected(401, "bad token")
        return fastcomm.Identity(user="alice")

    @app.on(Add)
    async def add(msg: Add, conn: fastcomm.Connection) -> int:
        return msg.a + msg.b

    @app.on(Mul)
    def mul(msg: Mul, conn: fastcomm.Connection) -> int:
        return msg.a * msg.b

    @app.on(Echo)
    async def echo(msg: Echo, conn: fastcomm.Connection) -> Any:
        if msg.delay:
            await asyncio.sleep(msg.delay)
        return msg.value

    @app.on(Boom)
    def boom(msg: Boom, conn: fastcomm.Connection) -> None:
        raise RuntimeError("database password is hunter2")

    @app.on(Whoami)
    def whoami(msg: Whoami, conn: fastcomm.Connection) -> dict[str, Any]:
        return {
            "session": conn.session_id,
            "user": conn.user,
            "subprotocol": conn.subprotocol,
            "header": conn.request.headers.get("X-Test"),
        }

    @app.on(Poke)
    def poke(msg: Poke, conn: fastcomm.Connection) -> str:
        conn.send(Notice(text=msg.text, n=len(msg.text)))
        return "poked"

    @app.on(Kick)
    def kick(msg: Kick, conn: fastcomm.Connection) -> None:
        state.transports.append(conn.transport.ws)  # type: ignore[attr-defined]
        conn.close(msg.code, msg.reason)

    @app.on(Hang)
    async def hang(msg: Hang, conn: fastcomm.Connection) -> str:
        state.hanging.set()
        await state.release.wait()
        state.finished.set()
        return "late"

    @app.on(Drop)
    def drop(msg: Drop, conn: fastcomm.Connection) -> None:
        conn.transport.abort()

    return app


@dataclass
class Harness:
    server: fastcomm.Server
    state: State

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    state = State()
    app = build_app(state)
    async with fastcomm.Server(
        app, port=0, heartbeat=12.5, max_message_size=65536, rate_burst=5000
    ) as server:
        try:
            yield Harness(server, state)
        finally:
            state.release.set()


# -- handshake and welcome ---------------------------------------------------------------
async def test_welcome_fields(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        welcome = client.welcome
        assert isinstance(welcome, Welcome)
        assert welcome.protocol == "fastcomm.v1"
        assert welcome.resumed is False
        assert welcome.heartbeat == 12.5
        assert welcome.max_message_size == 65536
        assert client.session == welcome.session and client.session
        assert client.resume_token == welcome.resume_token
        assert client.resume_token and client.resume_token != client.session
        seen = await client.call(Whoami())
        assert seen["session"] == client.session
        assert seen["subprotocol"] == JSON


async def test_token_headers_and_refusals(harness: Harness) -> None:
    async with await Client.connect(harness.url, token="good", headers={"X-Test": "42"}) as client:
        seen = await client.call(Whoami())
        assert seen["user"] == "alice"
        assert seen["header"] == "42"
    with pytest.raises(HandshakeFailed) as bad_token:
        await Client.connect(harness.url, token="bad")
    assert bad_token.value.status == 401
    with pytest.raises(HandshakeFailed) as denied:
        await Client.connect(harness.url, headers={"X-Deny": "1"})
    assert denied.value.status == 403
    assert len(harness.server.node.connections) == 0


async def test_resume_restores_the_session(harness: Harness) -> None:
    first = await Client.connect(harness.url)
    session, token = first.session, first.resume_token
    await first.close()
    async with await Client.connect(harness.url, resume=token) as second:
        assert second.welcome.resumed is True
        assert second.session == session


async def test_connect_failures() -> None:
    async with scripted([]) as (url, _server):  # upgrades, never sends welcome
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await Client.connect(url, timeout=0.3)
        assert time.monotonic() - started < 2
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        await Client.connect(f"ws://127.0.0.1:{port}/ws", timeout=2)


class Clash(fastcomm.Message, tag="message"):
    """Same tag as the server's Publication."""


async def test_bad_arguments_fail_before_connecting() -> None:
    url = "ws://127.0.0.1:9/ws"  # never dialled
    with pytest.raises(ValueError, match="subprotocol"):
        await Client.connect(url, subprotocol="fastcomm.v2.xml")
    with pytest.raises(ValueError, match="'message'"):
        await Client.connect(url, types=[Clash])
    with pytest.raises(TypeError):
        await Client.connect(url, types=[dict])  # type: ignore[list-item]


# -- requests --------------------------------------------------------------------------
async def test_ping_pong_with_assigned_and_explicit_ids(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        ping = Ping()
        first = await client.request(ping)
        second = await client.request(ping)
        assert isinstance(first, Pong) and isinstance(second, Pong)
        assert first.id != second.id
        assert ping.id is msgspec.UNSET  # the caller's message is not modified
        explicit = await client.request(Ping(id=4242))
        assert explicit == Pong(id=4242)


async def test_app_handlers_sync_and_async(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        assert await client.call(Add(a=2, b=3)) == 5  # async handler
        assert await client.call(Mul(a=4, b=5)) == 20  # sync handler
        reply = await client.request(Add(a=1, b=1, id=77))
        assert reply == Result(id=77, data=2)
        with pytest.raises(fastcomm.ClientError, match="expected a result"):
            await client.call(Ping())


async def test_unknown_type_fails_the_request(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        with pytest.raises(fastcomm.RequestFailed) as failed:
            await client.request(Nope())
        assert failed.value.code == "unknown_type"
        assert failed.value.details["path"] == "$.type"
        assert isinstance(await client.request(Ping()), Pong)  # still open


async def test_invalid_message_names_the_failing_path(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        with pytest.raises(fastcomm.RequestFailed) as failed:
            await client.request(BadAdd(a=1, b="x"))
        assert failed.value.code == "invalid_message"
        assert failed.value.details["path"] == "$.b"


async def test_internal_error_hides_the_exception(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        with pytest.raises(fastcomm.RequestFailed) as failed:
            await client.request(Boom())
        error = failed.value
        assert error.code == "internal"
        shown = f"{error} {error.message} {error.details!r}"
        assert "hunter2" not in shown
        assert "Traceback" not in shown and "RuntimeError" not in shown
        assert set(error.details) == {"correlation_id"}


async def test_msgpack_round_trip(harness: Harness) -> None:
    async with await Client.connect(harness.url, subprotocol=MSGPACK) as client:
        assert client.subprotocol == MSGPACK
        assert (await client.call(Whoami()))["subprotocol"] == MSGPACK
        value = {"raw": b"\x00\xff", "items": [1, 2.5, None, "é"], "nested": {"ok": True}}
        assert await client.call(Echo(value=value)) == value  # bytes survive: not JSON
        assert isinstance(await client.request(Ping()), Pong)
        with pytest.raises(fastcomm.RequestFailed) as failed:
            await client.request(BadAdd(a=1, b="x"))
        assert failed.value.details["path"] == "$.b"


async def test_thousand_concurrent_requests(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        # Varied delays make the server answer out of order.
        requests = [Echo(value=i, delay=(i * 7919 % 10) / 1000) for i in range(1000)]
        replies = await asyncio.gather(*(client.request(msg) for msg in requests))
        assert all(isinstance(reply, Result) for reply in replies)
        assert [reply.data for reply in replies if isinstance(reply, Result)] == list(range(1000))
        assert len({reply.id for reply in replies if isinstance(reply, Result)}) == 1000
        assert len(client.connection._pending) == 0


async def test_request_timeout_drops_the_late_reply(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        with pytest.raises(TimeoutError):
            await client.request(Hang(), timeout=0.2)
        harness.state.release.set()
        await harness.state.finished.wait()
        assert isinstance(await client.request(Ping()), Pong)  # sent after the late reply
        assert len(client.inbox) == 0


# -- pushes ------------------------------------------------------------------------------
async def test_push_is_decoded_to_the_declared_type(harness: Harness) -> None:
    async with await Client.connect(harness.url, types=[Notice]) as client:
        assert await client.call(Poke(text="hello")) == "poked"
        push = await client.receive(timeout=5)
        assert push == Notice(text="hello", n=5)


async def test_push_of_an_undeclared_type_is_a_dict(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        await client.call(Poke(text="hi"))
        assert await client.receive(timeout=5) == {"type": "notice", "text": "hi", "n": 2}


async def test_errors_without_id_are_pushes(harness: Harness) -> None:
    async with await Client.connect(harness.url) as client:
        client.send_raw("not json")
        client.send(Nope())
        first = await client.receive(timeout=5)
        second = await client.receive(timeout=5)
        assert isinstance(first, ErrorReply) and isinstance(second, ErrorReply)
        assert (first.id, first.code) == (None, "invalid_message")
        assert (second.id, second.code) == (None, "unknown_type")
        with pytest.raises(TimeoutError):
            await client.receive(timeout=0.05)


# -- closing -----------------------------------------------------------------------------
@pytest.mark.parametrize("code", [1000, 4000])
async def test_client_close_completes_the_handshake(harness: Harness, code: int) -> None:
    client = await Client.connect(harness.url)
    started = time.monotonic()
    await client.close(code)
    assert client.close_code == code  # the server's echo, not a local default
    assert time.monotonic() - started < 2  # no 5 s abort: the server answered
    await eventually(lambda: len(harness.server.node.connections) == 0)
    with pytest.raises(fastcomm.ConnectionClosed):
        await client.request(Ping())
    with pytest.raises(fastcomm.ConnectionClosed):
        client.send(Ping())
    with pytest.raises(fastcomm.ConnectionClosed):
        await client.receive(timeout=5)
    async with asyncio.timeout(5):
        assert [msg async for msg in client] == []


async def test_server_initiated_close(harness: Harness) -> None:
    client = await Client.connect(harness.url)
    client.send(Kick(code=4003, reason="revoked"))
    async with asyncio.timeout(5):
        assert [msg async for msg in client] == []  # iteration ends on close
    assert (client.close_code, client.close_reason) == (4003, "revoked")
    with pytest.raises(fastcomm.ConnectionClosed) as closed:
        await client.receive(timeout=5)
    assert closed.value.code == 4003
    (server_side,) = harness.state.transports
    await eventually(lambda: server_side.is_disconnected)
    received = server_side.close_handshake.recv
    # The client echoed the CLOSE. (picows types ``code`` as its enum; 4003 is a plain int.)
    assert received is not None and cast(int, received.code) == 4003


@pytest.mark.parametrize(("stop", "expected"), [(Drop(), 1006), (Kick(code=4003), 4003)])
async def test_pending_request_fails_when_the_connection_ends(
    harness: Harness, stop: fastcomm.Message, expected: int
) -> None:
    client = await Client.connect(harness.url, reconnect=False)
    pending = asyncio.create_task(client.request(Hang()))
    await asyncio.wait_for(harness.state.hanging.wait(), 5)
    client.send(stop)
    with pytest.raises(fastcomm.ConnectionClosed) as closed:
        await asyncio.wait_for(pending, 5)
    assert closed.value.code == expected
    assert client.close_code == expected


# -- against a minimal picows server -------------------------------------------------------
@asynccontextmanager
async def scripted(
    script: list[tuple[WSMsgType, bytes, bool]], *, answer_subprotocol: bool = True
) -> AsyncIterator[tuple[str, FakeServer]]:
    """A picows server playing ``script`` on connect; yields its URL and the server
    (``close_codes``: the CLOSE codes it got; it echoes each CLOSE)."""

    def play(peer: Peer) -> None:
        for msg_type, payload, fin in script:
            peer.frame(msg_type, payload, fin)

    async with FakeServer(on_connect=play, subprotocol=answer_subprotocol) as server:
        yield server.url, server


WELCOME = Welcome("s1", "t1", False, 25.0, 1024)
TEXT, BINARY, CONT, PING = (
    WSMsgType.TEXT,
    WSMsgType.BINARY,
    WSMsgType.CONTINUATION,
    WSMsgType.PING,
)


async def test_fragmented_messages_are_reassembled() -> None:
    welcome = msgspec.json.encode(WELCOME)
    push = msgspec.json.encode(Publication("news", 7, "e1", {"x": "é" * 3}))
    cut = push.index("é".encode()) + 1  # split inside a multi-byte character
    script = [
        (TEXT, welcome[:10], False),
        (CONT, welcome[10:20], False),
        (CONT, welcome[20:], True),
        (TEXT, push[:cut], False),
        (PING, b"hi", True),  # control frames may come between fragments
        (CONT, push[cut:], True),
    ]
    async with scripted(script) as (url, _server), await Client.connect(url) as client:
        assert client.session == "s1"
        assert await client.receive(timeout=5) == Publication("news", 7, "e1", {"x": "ééé"})


# msgspec skips unknown fields without checking them: only the frame-level UTF-8 check sees this.
BAD_JOIN_JSON = b'{"type":"join","channel":"c","session":"s","user":null,"x":"\xff"}'
# msgpack {"type": "join", "channel": <str holding byte 0xff>, "session": "s", "user": nil}
BAD_JOIN_MSGPACK = b"\x84\xa4type\xa4join\xa7channel\xa1\xff\xa7session\xa1s\xa4user\xc0"


@pytest.mark.parametrize(
    ("subprotocol", "frame", "code"),
    [
        (JSON, (TEXT, b"{not json", True), 1007),
        (JSON, (TEXT, BAD_JOIN_JSON, True), 1007),  # invalid UTF-8 in a TEXT frame
        (MSGPACK, (BINARY, BAD_JOIN_MSGPACK, True), 1007),  # invalid UTF-8 in a msgpack str
        (JSON, (BINARY, b"{}", True), 1003),  # BINARY frame on the JSON subprotocol
    ],
)
async def test_undecodable_server_data_closes_the_connection(
    subprotocol: str, frame: tuple[WSMsgType, bytes, bool], code: int
) -> None:
    encode = msgspec.msgpack.encode if subprotocol == MSGPACK else msgspec.json.encode
    welcome = (BINARY if subprotocol == MSGPACK else TEXT, encode(WELCOME), True)
    async with scripted([welcome, frame]) as (url, server):
        client = await Client.connect(url, subprotocol=subprotocol)
        with pytest.raises(fastcomm.ConnectionClosed):
            await client.receive(timeout=5)
        assert server.close_codes == [code]
        assert client.close_code == code


async def test_refused_subprotocol_fails_the_connect() -> None:
    welcome = (TEXT, msgspec.json.encode(WELCOME), True)
    async with scripted([welcome], answer_subprotocol=False) as (url, _server):
        with pytest.raises(HandshakeFailed) as refused:
            await Client.connect(url, subprotocol=MSGPACK)
        assert refused.value.status == 101
        async with await Client.connect(url) as client:  # no header means JSON: accepted
            assert client.session == "s1"
