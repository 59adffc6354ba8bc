"""The Python client at the edges of one connection, over real sockets.

What a server can answer to the upgrade, what it can send instead of a
well-formed conversation (closing before ``welcome``, a CLOSE without a code,
no answer to our CLOSE, frames after a protocol violation) and what the
client's own callers can get wrong (id clashes, close codes a client may
not send). Most tests talk to :class:`~tests.integration.fakeserver.FakeServer`
or a raw TCP server to make it misbehave; the rest to a real fastcomm server.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from picows import WSMsgType

import fastcomm
from fastcomm.client import Client, ClientConnection, HandshakeFailed
from fastcomm.client.codec import ClientCodec, Decoded
from fastcomm.protocol.channel_messages import Publication
from fastcomm.protocol.messages import ErrorReply, Ping, Pong
from tests.integration.conftest import eventually, running
from tests.integration.fakeserver import WELCOME, FakeServer, Peer

TIMEOUT = 5.0
PUSH = Publication("news", 1, "e1", "hello")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


@asynccontextmanager
async def answering(response: bytes | None) -> AsyncIterator[str]:
    """A TCP server that answers any HTTP request with ``response`` (None: closes
    the connection at once), then closes; yields its ws URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if response is not None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(response)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
    finally:
        server.close()


# -- the upgrade ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "status", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nno socket", 200, b"no socket"),
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", 503, b"busy"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", None, b""),  # not HTTP at all
    ],
)
async def test_an_upgrade_answer_other_than_101_fails_the_connect(
    response: bytes, status: int | None, body: bytes
) -> None:
    async with answering(response) as url:
        with pytest.raises(HandshakeFailed) as refused:
            await Client.connect(url, timeout=TIMEOUT)
    assert refused.value.status == status
    assert refused.value.body == body


@pytest.mark.parametrize(
    "response", [None, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"]
)
async def test_a_connection_closed_during_the_upgrade_fails_the_connect_at_once(
    response: bytes | None,
) -> None:
    """Closed before the answer, or in the middle of it: not a wait for ``welcome``
    until the timeout, but a connection error (which the reconnect loop retries)."""
    async with answering(response) as url:
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            await Client.connect(url, timeout=2)
        assert time.monotonic() - started < 1


async def test_a_close_before_welcome_fails_the_connect_with_its_code() -> None:
    async with FakeServer(lambda peer: peer.close(close_payload(1013, "try again later"))) as fake:
        with pytest.raises(fastcomm.ConnectionClosed) as closed:
            await Client.connect(fake.url, timeout=TIMEOUT)
        assert (closed.value.code, closed.value.reason) == (1013, "try again later")
        (peer,) = fake.peers
        await asyncio.wait_for(peer.gone.wait(), TIMEOUT)
        assert peer.closes == [close_payload(1013)]  # the client answered the CLOSE


async def test_a_first_message_other_than_welcome_is_a_protocol_error() -> None:
    async with FakeServer(lambda peer: peer.send(Pong(1))) as fake:
        started = time.monotonic()
        with pytest.raises(fastcomm.ConnectionClosed) as closed:
            await Client.connect(fake.url, timeout=TIMEOUT)
        assert closed.value.code == 1002
        (peer,) = fake.peers
        assert peer.closes[0][:2] == struct.pack("!H", 1002)
        assert time.monotonic() - started < TIMEOUT - 1  # not the client's 5 s abort timer


# -- the server's side of closing -------------------------------------------------------------


def kick_on_request(payload: bytes) -> FakeServer:
    """Answers the first request with CLOSE ``payload``."""
    return FakeServer(on_request=lambda peer, _request: peer.close(payload))


async def test_a_close_frame_without_a_code_means_1005() -> None:
    async with kick_on_request(b"") as fake:
        client = await Client.connect(fake.url, reconnect=False)
        with pytest.raises(fastcomm.ConnectionClosed) as ended:
            await client.request(Ping(), TIMEOUT)
        assert ended.value.code == 1005
        assert client.close_code == 1005 and client.closed
        (peer,) = fake.peers
        assert peer.closes == [close_payload(1000)]  # RFC 6455: answered with 1000


async def test_an_unanswered_close_is_aborted_after_its_timeout() -> None:
    async with FakeServer(echo_close=False) as fake:
        client = await Client.connect(fake.url, reconnect=False)
        started = time.monotonic()
        await client.connection.close(4000, "bye", timeout=0.2)
        assert time.monotonic() - started < 2
        assert client.close_code == 1006 and client.closed
        (peer,) = fake.peers
        assert peer.closes == [close_payload(4000, "bye")]
        await asyncio.wait_for(peer.gone.wait(), TIMEOUT)
        await client.close()  # already over: returns at once, sends nothing more
        assert peer.closes == [close_payload(4000, "bye")]


async def test_nothing_from_the_server_is_delivered_after_a_protocol_violation() -> None:
    def misbehave(peer: Peer) -> None:
        peer.send(WELCOME)
        peer.frame(WSMsgType.BINARY, b"{}")  # BINARY on the JSON subprotocol: 1003
        peer.send(PUSH)
        peer.frame(WSMsgType.CONTINUATION, b"x")  # a continuation of nothing: 1002

    async with FakeServer(misbehave) as fake:
        client = await Client.connect(fake.url, reconnect=False)
        with pytest.raises(fastcomm.ConnectionClosed):
            await client.receive(TIMEOUT)
        assert client.close_code == 1003
        (peer,) = fake.peers
        assert [payload[:2] for payload in peer.closes] == [struct.pack("!H", 1003)]  # one CLOSE


async def test_an_unsolicited_pong_frame_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    def pong_first(peer: Peer) -> None:
        peer.send(WELCOME)
        peer.frame(WSMsgType.PONG, b"unasked")
        peer.send(PUSH)

    caplog.set_level(logging.WARNING, "fastcomm.client")
    async with FakeServer(pong_first) as fake:
        client = await Client.connect(fake.url, reconnect=False)
        assert await client.receive(TIMEOUT) == PUSH
        assert not client.closed
        await client.close()
    assert caplog.records == []  # not even reported as an error


# -- replies ---------------------------------------------------------------------------------


async def test_an_error_reply_of_an_unknown_shape_still_fails_the_request() -> None:
    """An ``error`` that does not fit this client's schema (here: no ``message``, a
    ``code`` that is a number) fails the request; it is not returned as a reply."""

    def answer(peer: Peer, request: dict[str, Any]) -> None:
        peer.send({"type": "error", "id": request["id"], "code": 42, "details": {"retry": 1}})

    async with FakeServer(on_request=answer) as fake:
        client = await Client.connect(fake.url, reconnect=False)
        with pytest.raises(fastcomm.RequestFailed) as failed:
            await client.request(Ping(), TIMEOUT)
        assert (failed.value.code, failed.value.message) == ("42", "")
        assert failed.value.details == {"retry": 1}
        await client.close()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def test_a_reply_nested_too_deeply_to_decode_closes_with_1007() -> None:
    """msgspec gives up on input nested about 1,000 levels deep (RecursionError).
    The client must treat that like any undecodable message (close with 1007,
    fail what is pending), not drop it and leave the request waiting."""

    def answer(peer: Peer, request: dict[str, Any]) -> None:
        head = b'{"type":"result","id":%d,"data":' % request["id"]
        peer.frame(WSMsgType.TEXT, head + nested(5000) + b"}")

    async with FakeServer(on_request=answer) as fake:
        client = await Client.connect(fake.url, reconnect=False)
        with pytest.raises(fastcomm.ConnectionClosed) as closed:
            await client.request(Ping(), TIMEOUT)
        assert closed.value.code == 1007
        (peer,) = fake.peers
        assert peer.closes[0][:2] == struct.pack("!H", 1007)


# -- what the caller can get wrong, against a real server -------------------------------------


class Wait(fastcomm.Message, tag="wait"):
    pass


async def test_request_ids_in_flight_are_never_reused() -> None:
    app = fastcomm.App()
    started, release = asyncio.Event(), asyncio.Event()

    @app.on(Wait)
    async def wait(msg: Wait, conn: fastcomm.Connection) -> str:
        started.set()
        await release.wait()
        return "done"

    async with running(app) as server:
        client = await Client.connect(server.url)
        waiting = asyncio.create_task(client.request(Wait(id=1)))
        await asyncio.wait_for(started.wait(), TIMEOUT)
        with pytest.raises(ValueError, match="already in flight"):
            await client.request(Ping(id=1))
        pong = await client.request(Ping(), TIMEOUT)  # the first id the client picks: not 1
        assert isinstance(pong, Pong) and pong.id != 1
        release.set()
        reply = await asyncio.wait_for(waiting, TIMEOUT)
        assert (reply.id, getattr(reply, "data", None)) == (1, "done")
        await client.close()


async def test_close_codes_a_client_may_not_send_are_refused() -> None:
    async with running() as server:
        client = await Client.connect(server.url)
        for code in (1005, 1006, 1015, 999, 5000):
            with pytest.raises(ValueError, match="not a close code"):
                await client.close(code)
            with pytest.raises(ValueError, match="not a close code"):
                await client.connection.close(code)
        assert isinstance(await client.request(Ping(), TIMEOUT), Pong)  # still open
        await client.close(4001)
        assert client.close_code == 4001


async def test_a_client_not_connected_yet() -> None:
    """``Client(url)`` only prepares a client: nothing to send on, nothing to close."""
    client = Client("ws://127.0.0.1:9/ws")  # never dialled
    assert repr(client) == "<ReconnectingClient ws://127.0.0.1:9/ws session=None closed>"
    with pytest.raises(fastcomm.ClientError, match="not connected"):
        client.send(Ping())
    await client.close()
    assert client.closed
    with pytest.raises(fastcomm.ConnectionClosed):
        await client.receive(TIMEOUT)
    async with running() as server:
        client = await Client.connect(server.url)
        assert repr(client) == f"<ReconnectingClient {server.url} session={client.session} open>"
        await client.close()
        assert repr(client).endswith(" closed>")


async def test_send_raw_picks_the_frame_type_it_is_told() -> None:
    async with running() as server:
        client = await Client.connect(server.url)
        client.send_raw(b'{"type":"ping","id":7}', binary=False)  # JSON as TEXT: a request
        assert await client.receive(TIMEOUT) == Pong(7)
        client.send_raw(b'{"type":"ping","id":8}', binary=True)  # BINARY on JSON: refused
        refused = await client.receive(TIMEOUT)
        assert isinstance(refused, ErrorReply) and refused.code == "invalid_message"
        assert "binary" in refused.message
        await client.close()


# -- ClientConnection's callbacks --------------------------------------------------------------


async def test_failing_callbacks_are_logged_and_do_not_break_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``ClientConnection`` is public: an exception from its ``on_push`` or
    ``on_closed`` is logged; the connection goes on, then ends as usual."""
    pushes: list[Decoded] = []
    ended: list[ClientConnection] = []

    def on_push(msg: Decoded) -> None:
        if isinstance(msg, Publication) and msg.data == "bad":
            raise RuntimeError("application bug")
        pushes.append(msg)

    def on_closed(conn: ClientConnection) -> None:
        ended.append(conn)
        raise RuntimeError("another application bug")

    def script(peer: Peer) -> None:
        peer.send(WELCOME)
        peer.send(Publication("news", 1, "e1", "bad"))
        peer.send(Publication("news", 2, "e1", "good"))

    caplog.set_level(logging.ERROR, "fastcomm.client")
    async with FakeServer(script, lambda peer, _request: peer.close(close_payload(4000))) as fake:
        conn = await ClientConnection.open(
            fake.url, ClientCodec("fastcomm.v1.json"), on_push=on_push, on_closed=on_closed
        )
        assert conn.welcome == WELCOME
        await eventually(lambda: pushes)
        conn.send(Ping())  # the server closes on any request
        await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
    assert pushes == [Publication("news", 2, "e1", "good")]
    assert ended == [conn] and conn.close_code == 4000
    messages = [record.getMessage() for record in caplog.records]
    assert any("handling a frame" in text for text in messages)
    assert any("on_closed callback failed" in text for text in messages)
