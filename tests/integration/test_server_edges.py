"""The picows server at its edges, over real sockets: startup failures, handshakes
refused before fastcomm's admission, hooks that fail, rate strikes, close reasons,
and the server API's corner cases."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
from typing import Any

import pytest
import websockets

import fastcomm
from fastcomm.errors import StartupError
from tests.integration.conftest import eventually, free_port, running, status_of
from tests.integration.rawws import RawWS
from tests.integration.test_channels import Peer

TIMEOUT = 5.0


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def raw_request(port: int, head: str) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers) and read the answer up to EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + b"\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]), answer


def upgrade_head(**drop: bool) -> str:
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    lines = ["GET /ws HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items() if not drop.get(k.replace("-", "_"))]
    return "\r\n".join(lines)


# -- startup -----------------------------------------------------------------------------


async def test_a_busy_port_is_a_startup_error_naming_it() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = fastcomm.Server(port=port)
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}: .*in use"):
            await server.start()
        assert not server.node.accepting
        await server.stop()  # never started: nothing to do


async def test_a_busy_api_port_is_a_startup_error_and_releases_the_websocket_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        api_port = busy.getsockname()[1]
        ws_port = free_port()
        server = fastcomm.Server(port=ws_port, api_key="k" * 16, api_port=api_port)
        where = f"127.0.0.1:{api_port}"
        with pytest.raises(StartupError, match=f"cannot serve the HTTP API on {where}"):
            await server.start()
    # The WebSocket port it had bound is free again: a new server can take it.
    async with running(port=ws_port) as again, websockets.connect(again.url) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"


# -- handshakes --------------------------------------------------------------------------


async def test_connections_beyond_max_pending_handshakes_get_503() -> None:
    async with running(max_pending_handshakes=1, handshake_timeout=30.0) as server:
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        # The second one the server accepted is over the bound: 503, then closed.
        reads = [asyncio.ensure_future(reader.read()) for reader, _ in silent]
        done, _ = await asyncio.wait(reads, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        (answer,) = (task.result() for task in done)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert answer.endswith(b"too many connections in handshake\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert f"Content-Length: {len(body)}".encode() in head
        assert server.node.stats.handshake_rejects == {503: 1}  # (/status would wait too)
        # While the other one holds the only place, a WebSocket client is refused too.
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(server.url):
                pass
        assert refused.value.response.status_code == 503
        for task in reads:
            task.cancel()
        for _, writer in silent:
            writer.close()

        async def admitted() -> bool:  # once the silent one is gone, upgrades pass again
            try:
                async with websockets.connect(server.url) as ws:
                    return json.loads(await ws.recv())["type"] == "welcome"
            except websockets.InvalidStatus:
                return False

        await eventually(admitted)


@pytest.mark.parametrize("missing", ["Sec_WebSocket_Key", "Sec_WebSocket_Version"])
async def test_upgrade_without_key_or_version_is_400_and_counted(missing: str) -> None:
    async with running() as server:
        status, answer = await raw_request(server.port, upgrade_head(**{missing: True}))
        assert status == 400 and answer.endswith(b"400 bad WebSocket handshake\n")
        assert (await status_of(server))["handshake_rejects"] == {"400": 1}


async def test_connection_header_without_upgrade_is_400_and_with_more_tokens_is_fine() -> None:
    async with running() as server:
        _, status, _ = await RawWS.connect("127.0.0.1", server.port, connection="keep-alive")
        assert status == 400
        ws, status, _ = await RawWS.connect(
            "127.0.0.1", server.port, connection="keep-alive, Upgrade"
        )
        assert status == 101  # what Firefox sends
        assert (await ws.recv_frame())[0] == 1  # the welcome
        ws.close()


async def test_connect_hook_returning_something_else_than_an_identity_is_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fastcomm.App()
    app.on_connect(lambda request: "alice")  # type: ignore[arg-type,return-value]
    async with running(app) as server:
        with (
            caplog.at_level(logging.ERROR, logger="fastcomm"),
            pytest.raises(websockets.InvalidStatus) as refused,
        ):
            async with websockets.connect(server.url):
                pass
        assert refused.value.response.status_code == 500
        assert b"alice" not in (refused.value.response.body or b"")
        assert logged(caplog, "connect hook returned 'str', not an Identity") == 1


# -- hooks and handlers ---------------------------------------------------------------------


class Slow(fastcomm.Message, tag="slow"):
    n: int


class Fail(fastcomm.Message, tag="fail"):
    pass


async def test_every_disconnect_hook_runs_even_when_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fastcomm.App()
    seen: list[str] = []

    @app.on_disconnect
    def broken(conn: fastcomm.Connection) -> None:
        raise RuntimeError("sync hook broke")

    @app.on_disconnect
    async def broken_later(conn: fastcomm.Connection) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async hook broke")

    @app.on_disconnect
    async def record(conn: fastcomm.Connection) -> None:
        await asyncio.sleep(0)
        seen.append(conn.session_id)

    async with running(app) as server:
        with caplog.at_level(logging.ERROR, logger="fastcomm"):
            peer = await Peer.connect(server.url)
            await peer.close()
            await eventually(lambda: seen == [peer.session])
            await eventually(lambda: logged(caplog, "disconnect hook failed") == 2)
        assert not server.node.connections
        other = await Peer.connect(server.url)  # the server carries on
        await other.nothing_pending()


async def test_a_sync_handler_may_return_an_awaitable_and_async_failures_are_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fastcomm.App()

    async def later(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    @app.on(Slow)
    def slow(msg: Slow, conn: fastcomm.Connection) -> Any:
        return later(msg.n)  # a coroutine: awaited, its value is the result

    @app.on(Fail)
    async def fail(msg: Fail, conn: fastcomm.Connection) -> None:
        await asyncio.sleep(0)
        raise KeyError("secret detail")

    async with running(app) as server:
        peer = await Peer.connect(server.url)
        assert (await peer.request(type="slow", n=21))["data"] == 42
        with caplog.at_level(logging.ERROR, logger="fastcomm"):
            reply = await peer.request(type="fail")
        assert reply["code"] == "internal" and "secret" not in str(reply)
        assert logged(caplog, reply["details"]["correlation_id"]) == 1
        await peer.nothing_pending()


async def test_rate_strikes_count_only_consecutive_excesses() -> None:
    # Two strikes in a row close 4029; a message within the rate in between forgives.
    options = {"rate_limit": 20.0, "rate_burst": 1, "rate_limit_close_after": 2, "heartbeat": 0.4}
    async with running(**options) as server:
        peer = await Peer.connect(server.url)
        (conn,) = server.node.connections
        for _ in range(3):
            await peer.send(type="ping", id=1)  # takes the only token
            await peer.send(type="ping", id=2)  # over the rate: strike one
            assert await peer.recv() == {"type": "pong", "id": 1}
            assert (await peer.recv())["code"] == "rate_limited"
            await eventually(lambda: conn.rate_tokens >= 1.0)  # refilled by the sweep
        assert not conn.closed
        await peer.send(type="ping", id=3)
        await peer.send(type="ping", id=4)
        await peer.send(type="ping", id=5)  # strike two in a row
        assert await peer.recv() == {"type": "pong", "id": 3}
        assert (await peer.recv())["code"] == "rate_limited"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await peer.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029


# -- closing -------------------------------------------------------------------------------


async def test_a_long_close_reason_is_cut_to_123_bytes_on_a_character_boundary() -> None:
    async with running() as server:
        peer = await Peer.connect(server.url)
        assert await server.app.disconnect(peer.session, code=4000, reason="é" * 100)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await peer.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "é" * 61)


async def test_frames_after_the_servers_close_are_ignored() -> None:
    async with running() as server:
        ws, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        assert (await ws.recv_frame())[0] == 1  # welcome
        session = next(iter(server.node.connections)).session_id
        assert await server.app.disconnect(session, code=4000, reason="bye")
        opcode, payload = await ws.recv_frame()
        assert (opcode, payload[:2]) == (8, b"\x0f\xa0")
        ws.send_text("héllo, after the close")  # not ASCII: the full validation path
        ws.send_frame(1, b'{"type":"ping","id":1}', fin=False)  # a fragment, never finished
        ws.send_frame(9, b"", rsv=4)  # a PING with a reserved bit: no 1002 after the close
        ws.send_close(4000)
        with pytest.raises(EOFError):  # no error, no second CLOSE: just the end
            await ws.recv_frame()
        await eventually(lambda: not server.node.connections)


# -- the server API --------------------------------------------------------------------------


async def test_server_api_corner_cases() -> None:
    app = fastcomm.App()

    @app.on_connect
    def connect(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
        return fastcomm.Identity(user=request.query.get("user"))

    async with running(app) as server:
        api = server.node.api
        assert await api.disconnect() == 0  # neither user nor session: nobody
        peer = await Peer.connect(server.url, "?user=alice")
        peer.abort()  # alice's session stays resumable, with no connection
        await eventually(lambda: not server.node.connections)
        assert await server.app.push("alice", {"type": "notice"}) == 0
        assert await server.app.push(peer.session, {"type": "notice"}) == 0
        assert not await server.app.disconnect(peer.session)


async def test_server_push_reaches_every_connection_of_a_user_in_its_encoding() -> None:
    app = fastcomm.App()
    app.on_connect(lambda request: fastcomm.Identity(user=request.query.get("user")))
    async with running(app) as server:
        peers = [
            await Peer.connect(server.url, "?user=alice"),
            await Peer.connect(server.url, "?user=alice"),
            await Peer.connect(server.url, "?user=alice", binary=True),
            await Peer.connect(server.url, "?user=bob"),
        ]
        assert await server.app.push("alice", {"type": "notice", "text": "hi"}) == 3
        for peer in peers[:3]:
            assert await peer.recv() == {"type": "notice", "text": "hi"}
        await peers[3].nothing_pending()


@pytest.mark.parametrize(
    ("authorization", "query", "token"),
    [
        ("Bearer  abc ", "", "abc"),
        ("Basic dXNlcjpwYXNz", "?token=from-query", "from-query"),  # not a bearer token
        ("Bearer ", "", None),  # no token in it
        ("Bearer", "?token=q", "q"),
    ],
)
async def test_the_token_comes_from_a_bearer_header_else_the_query(
    authorization: str, query: str, token: str | None
) -> None:
    seen: list[str | None] = []
    app = fastcomm.App()
    app.on_connect(lambda request: seen.append(request.token))
    async with running(app) as server:
        headers = {"Authorization": authorization}
        async with websockets.connect(server.url + query, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
    assert seen == [token]


async def test_demo_mode_announces_joins_on_the_demo_channels() -> None:
    async with running(demo=True) as server:
        peer = await Peer.connect(server.url)
        await peer.subscribe("demo:lobby")
        assert await peer.recv() == {
            "type": "join",
            "channel": "demo:lobby",
            "session": peer.session,
            "user": None,
        }
        await peer.subscribe("other")
        await server.app.publish("other", 1)
        assert (await peer.messages(1))[0]["channel"] == "other"  # no join elsewhere
