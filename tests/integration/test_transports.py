"""One protocol suite, three transports: picows, ASGI under uvicorn, ASGI under granian.

Every test runs the same App on each transport (``served``, real servers on
free ports) and talks to it with the ``websockets`` library and/or
``fastcomm.Client``. Where a transport behaves differently by nature, the
test asserts what it does instead (see docs/TRANSPORTS.md).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import msgspec
import pytest
import websockets

import fastcomm
from fastcomm.protocol.messages import Ping, Pong
from tests.integration.conftest import eventually, http_get, resumable
from tests.integration.test_channels import Peer
from tests.integration.test_limits import Flood, flood
from tests.integration.transports import TRANSPORTS, served

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)

JSON, MSGPACK = "fastcomm.v1.json", "fastcomm.v1.msgpack"
TIMEOUT = 10.0

app = fastcomm.App()


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


@app.on(Add)
async def add(msg: Add, conn: fastcomm.Connection) -> int:
    return msg.a + msg.b


app.on(Flood)(flood)  # pushes until the outbound bound says no


@app.on_connect
def authenticate(request: fastcomm.ConnectRequest) -> fastcomm.Identity | None:
    if request.token == "none":
        raise fastcomm.Rejected(401, "missing token")
    if request.token == "banned":
        raise fastcomm.Rejected(403, "forbidden")
    assert request.peer is not None and request.peer[0] == "127.0.0.1"
    return fastcomm.Identity(user=request.token) if request.token else None


async def recv_json(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))  # type: ignore[no-any-return]


async def roundtrip(ws: Any, message: str) -> dict[str, Any]:
    await ws.send(message)
    return await recv_json(ws)


async def close_code(ws: Any) -> int | None:
    """Read until the server closes; the close code it sent (None: no close frame)."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return None if info.value.rcvd is None else info.value.rcvd.code


async def refused_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, **kwargs):
            pass
    return info.value.response.status_code


# -- routing ---------------------------------------------------------------------------
async def test_welcome_and_a_routed_message_with_both_clients(transport: str) -> None:
    async with served(app, transport) as server:
        async with websockets.connect(server.url) as ws:
            welcome = await recv_json(ws)
            assert welcome["type"] == "welcome" and welcome["protocol"] == "fastcomm.v1"
            assert ws.subprotocol is None  # nothing offered, nothing answered
            reply = await roundtrip(ws, '{"type":"add","id":7,"a":1,"b":2}')
            assert reply == {"type": "result", "id": 7, "data": 3}
        client = await fastcomm.Client.connect(server.url, token="alice")
        async with client:
            assert client.welcome.session
            assert await client.call(Add(a=20, b=22)) == 42
            assert await client.request(Ping()) == Pong(id=2)
        assert client.close_code == 1000


@pytest.mark.parametrize(
    ("frame", "code", "rid", "path"),
    [
        ('{"type":"add","id":5,"a":"x","b":2}', "invalid_message", 5, "$.a"),
        ("not json", "invalid_message", None, "$"),
        ('{"type":"nope","id":8}', "unknown_type", 8, "$.type"),
    ],
)
async def test_bad_messages_get_errors_with_path(
    transport: str, frame: str, code: str, rid: int | None, path: str
) -> None:
    async with served(app, transport) as server, websockets.connect(server.url) as ws:
        await recv_json(ws)
        reply = await roundtrip(ws, frame)
        assert (reply["type"], reply["code"], reply["id"]) == ("error", code, rid)
        assert reply["details"]["path"] == path
        assert await roundtrip(ws, '{"type":"ping","id":9}') == {"type": "pong", "id": 9}


async def test_binary_frame_on_json_connection_is_invalid(transport: str) -> None:
    async with served(app, transport) as server, websockets.connect(server.url) as ws:
        await recv_json(ws)
        await ws.send(b'{"type":"ping","id":1}')
        reply = await recv_json(ws)
        assert (reply["code"], reply["message"]) == (
            "invalid_message",
            "binary frames are not used by fastcomm.v1.json",
        )


async def test_msgpack_subprotocol_is_negotiated(transport: str) -> None:
    async with served(app, transport) as server:
        async with websockets.connect(server.url, subprotocols=["bogus", MSGPACK]) as ws:
            assert ws.subprotocol == MSGPACK
            welcome = msgspec.msgpack.decode(await ws.recv())
            assert welcome["type"] == "welcome"
            await ws.send(msgspec.msgpack.encode({"type": "add", "id": 1, "a": 2, "b": 3}))
            assert msgspec.msgpack.decode(await ws.recv()) == {"type": "result", "id": 1, "data": 5}
        client = await fastcomm.Client.connect(server.url, subprotocol=MSGPACK)
        async with client:
            assert await client.call(Add(a=1, b=1)) == 2


# -- refusals before the upgrade ----------------------------------------------------
async def test_refusals_are_http_statuses_before_the_upgrade(transport: str) -> None:
    async with served(app, transport, allowed_origins=["https://good.example"]) as server:
        assert await refused_status(server.url, subprotocols=["bogus"]) == 400  # type: ignore[list-item]
        assert await refused_status(server.url + "?token=none") == 401
        assert await refused_status(server.url + "?token=banned") == 403
        origin: Any = "https://evil.example"
        assert await refused_status(server.url, origin=origin) == 403
        with pytest.raises(fastcomm.HandshakeFailed) as info:
            await fastcomm.Client.connect(server.url, token="banned")
        assert "403" in str(info.value)
        good: Any = "https://good.example"
        async with websockets.connect(server.url, origin=good) as ws:
            assert (await recv_json(ws))["type"] == "welcome"
        assert server.node.stats.handshake_rejects == {400: 1, 401: 1, 403: 3}


async def test_max_connections_is_503(transport: str) -> None:
    async with served(app, transport, max_connections=2) as server:
        clients = [await websockets.connect(server.url) for _ in range(2)]
        for ws in clients:
            await recv_json(ws)
        assert await refused_status(server.url) == 503
        await clients[0].close()
        await eventually(lambda: len(server.node.connections) == 1)
        async with websockets.connect(server.url) as ws:
            assert (await recv_json(ws))["type"] == "welcome"
        await clients[1].close()


# -- limits after the upgrade --------------------------------------------------------
async def test_rate_limit_errors_then_4029(transport: str) -> None:
    options = {"rate_limit": 1, "rate_burst": 5, "rate_limit_close_after": 10}
    async with served(app, transport, **options) as server, websockets.connect(server.url) as ws:
        await recv_json(ws)
        for i in range(30):
            await ws.send(json.dumps({"type": "ping", "id": i}))
        replies: list[dict[str, Any]] = []
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                replies.append(await recv_json(ws))
        assert info.value.rcvd is not None and info.value.rcvd.code == 4029
        assert [r["type"] for r in replies[:5]] == ["pong"] * 5
        limited = replies[5:]
        assert limited and all(r["code"] == "rate_limited" for r in limited)
        assert [r["id"] for r in limited] == list(range(5, 5 + len(limited)))


async def test_oversized_message_is_closed_with_1009(transport: str) -> None:
    async with served(app, transport, max_message_size=1024) as server:
        async with websockets.connect(server.url) as ws:
            assert (await recv_json(ws))["max_message_size"] == 1024
            await ws.send(json.dumps({"type": "ping", "id": 1, "pad": "x" * 900}))
            assert (await recv_json(ws))["type"] == "pong"  # at the limit: fine
            await ws.send(json.dumps({"type": "ping", "id": 2, "pad": "x" * 2000}))
            assert await close_code(ws) == 1009
        await eventually(lambda: len(server.node.connections) == 0)


async def test_slow_consumer_is_closed_with_4008(transport: str) -> None:
    limit = 1024 * 1024
    async with served(app, transport, max_outbound_buffer=limit) as server:
        # max_queue=1: the client stops reading the socket once one message waits.
        slow = await websockets.connect(server.url, max_queue=1, max_size=None)
        await recv_json(slow)
        async with websockets.connect(server.url) as healthy:
            await recv_json(healthy)
            await slow.send(json.dumps({"type": "flood", "id": 1, "count": 2000, "size": 100_000}))
            await eventually(lambda: server.node.stats.slow_consumers == 1, timeout=TIMEOUT)
            assert await roundtrip(healthy, '{"type":"ping","id":1}') == {"type": "pong", "id": 1}
            # Reading again, the slow client finds what was queued, then 4008.
            assert await close_code(slow) == 4008
        await eventually(lambda: len(server.node.connections) == 0)


# -- channels --------------------------------------------------------------------------
async def test_channels_subscribe_publish_and_recover(transport: str) -> None:
    async with served(app, transport) as server:
        a = await Peer.connect(server.url)
        b = await Peer.connect(server.url, binary=True)
        await a.subscribe("feed")
        await b.subscribe("feed")
        reply = await b.request(type="publish", channel="feed", data={"n": 1})
        assert reply["type"] == "published" and reply["offset"] == 1
        (msg,) = await a.messages(1)
        assert (msg["offset"], msg["data"]) == (1, {"n": 1})
        assert (await b.messages(1))[0]["data"] == {"n": 1}
        a.abort()
        await eventually(lambda: resumable(server) == 1)
        for i in range(2, 5):
            await server.node.api.publish("feed", {"n": i})
        back = await Peer.connect(server.url, f"?resume={a.token}")
        assert back.welcome["resumed"] is True and back.session == a.session
        resubscribed = await back.recv()
        assert resubscribed["type"] == "subscribed" and resubscribed["recovered"] is True
        assert resubscribed["epoch"] == msg["epoch"]  # the stream's, since its first publication
        assert [m["offset"] for m in await back.messages(3)] == [2, 3, 4]
        await back.nothing_pending()
        await back.close()
        await b.close()


async def test_resume_in_the_first_message(transport: str) -> None:
    async with served(app, transport) as server:
        a = await Peer.connect(server.url)
        await a.subscribe("feed")
        a.abort()
        await eventually(lambda: resumable(server) == 1)
        await server.node.api.publish("feed", "missed")
        back = await Peer.connect(server.url)
        reply = await back.request(type="resume", token=a.token)
        assert (reply["type"], reply["session"], reply["resumed"]) == ("resumed", a.session, True)
        assert (await back.recv())["type"] == "subscribed"
        assert [m["data"] for m in await back.messages(1)] == ["missed"]
        assert len(server.node.sessions) == 1
        await back.close()


# -- HTTP endpoints and lifecycle ----------------------------------------------------
async def test_http_endpoints(transport: str) -> None:
    async with served(app, transport) as server:
        assert await http_get(server.port, "/healthz") == (200, b"ok\n")
        assert await http_get(server.port, "/readyz") == (200, b"ready\n")
        assert (await http_get(server.port, "/nope"))[0] == 404
        assert (await http_get(server.port, "/ws"))[0] == 426
        async with websockets.connect(server.url) as ws:
            await recv_json(ws)
            await roundtrip(ws, '{"type":"add","id":1,"a":1,"b":1}')
            code, body = await http_get(server.port, "/status")
            status = json.loads(body)
            assert code == 200 and status["connections"] == 1
            assert (status["messages_in"], status["messages_out"]) == (1, 2)
            assert status["messages_by_type"] == {"add": 1}
        code, body = await http_get(server.port, "/metrics")
        assert code == 200 and b'fastcomm_messages_routed_total{type="add"} 1.0' in body


async def test_node_drain_closes_every_connection_with_1001(transport: str) -> None:
    async with served(app, transport) as server:
        clients = [await websockets.connect(server.url) for _ in range(3)]
        for ws in clients:
            await recv_json(ws)
        drain = asyncio.get_running_loop().create_task(server.node.drain())
        assert [await close_code(ws) for ws in clients] == [1001] * 3
        await drain
        assert await http_get(server.port, "/readyz") == (503, b"draining\n")
        assert await refused_status(server.url) == 503


# What each server sends to open WebSockets when it is told to stop (its SIGTERM path):
# fastcomm drains with 1001 on picows; uvicorn closes them itself with 1012 before it
# runs the lifespan shutdown; granian drops them without a close frame.
_ON_SERVER_STOP = {"picows": 1001, "asgi-uvicorn": 1012, "granian": None}


async def test_server_stop_closes_open_connections(transport: str) -> None:
    async with served(app, transport) as server:
        ws = await websockets.connect(server.url)
        await recv_json(ws)
        stopping = asyncio.get_running_loop().create_task(server.stop())
        assert await close_code(ws) == _ON_SERVER_STOP[transport]
        await stopping
        assert not server.node.accepting and not server.node.connections


async def test_abrupt_disconnects_leave_no_connection_and_no_live_session(transport: str) -> None:
    async with served(app, transport) as server:
        clients = [await websockets.connect(server.url) for _ in range(10)]
        for ws in clients:
            await recv_json(ws)
        for ws in clients:
            ws.transport.abort()  # TCP reset, no close frame
        await eventually(lambda: len(server.node.connections) == 0)
        assert resumable(server) == 10  # resumable, not live
        assert await http_get(server.port, "/readyz") == (200, b"ready\n")


async def test_server_api_disconnect_sends_code_and_reason(transport: str) -> None:
    async with served(app, transport) as server, websockets.connect(server.url) as ws:
        session = (await recv_json(ws))["session"]
        assert await server.node.api.disconnect(session=session, code=4003, reason="bye now")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await recv_json(ws)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4003, "bye now")
        await eventually(lambda: len(server.node.connections) == 0)
        assert server.node.sessions.get(session) is None  # revoked


async def test_echo_endpoint_keeps_the_frame_type(transport: str) -> None:
    async with served(None, transport, echo=True) as server, websockets.connect(server.url) as ws:
        await ws.send("héllo")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "héllo"
        await ws.send(b"\x00\xff")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00\xff"


async def _post(port: int, path: str, body: bytes) -> int:
    def post() -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    return await asyncio.to_thread(post)


async def test_other_methods_and_request_bodies_are_bounded(transport: str) -> None:
    async with served(app, transport) as server:
        posts = [
            await _post(server.port, "/status", b"{}"),
            await _post(server.port, "/ws", b"{}"),
            await _post(server.port, "/status", b"x" * 100_000),
        ]
        # picows refuses a request with a body from its head (400, see PROTOCOL.md); the
        # ASGI transport answers 405 and reads at most 64 KiB of a body (413 above).
        assert posts == ([400] * 3 if transport == "picows" else [405, 405, 413])
        assert await http_get(server.port, "/healthz") == (200, b"ok\n")
