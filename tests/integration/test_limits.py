"""Protection: auth, origin, max connections, rate limit, slow consumers."""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

import pytest
import websockets

import fastcomm
from tests.integration.conftest import eventually, http_get, running, status_of
from tests.integration.rawws import RawWS

auth_app = fastcomm.App()


@auth_app.on_connect
def authenticate(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
    if request.token is None:
        raise fastcomm.Rejected(401, "missing token")
    if request.token == "banned":
        raise fastcomm.Rejected(403, "forbidden")
    if request.token == "full":
        raise fastcomm.Rejected(503, "try later")
    assert request.peer is not None and request.peer[0] == "127.0.0.1"
    return fastcomm.Identity(user=request.token, meta={"path": request.path})


class WhoAmI(fastcomm.Message, tag="whoami"):
    pass


@auth_app.on(WhoAmI)
def whoami(msg: WhoAmI, conn: fastcomm.Connection) -> dict[str, Any]:
    return {"user": conn.user, "meta": conn.meta, "session": conn.session_id}


@pytest.mark.parametrize(
    ("suffix", "headers", "status"),
    [("", {}, 401), ("?token=banned", {}, 403), ("?token=full", {}, 503)],
)
async def test_connect_hook_rejects_with_http_status(
    suffix: str, headers: dict[str, str], status: int
) -> None:
    async with running(auth_app) as server:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(server.url + suffix, additional_headers=headers):
                pass
        assert info.value.response.status_code == status
        assert (await status_of(server))["connections"] == 0


async def test_token_from_header_or_query_sets_identity() -> None:
    async with running(auth_app) as server:
        headers = {"Authorization": "Bearer alice"}
        async with websockets.connect(server.url, additional_headers=headers) as ws:
            welcome = json.loads(await ws.recv())
            await ws.send('{"type":"whoami","id":1}')
            data = json.loads(await ws.recv())["data"]
            assert data == {"user": "alice", "meta": {"path": "/ws"}, "session": welcome["session"]}
        async with websockets.connect(server.url + "?token=bob") as ws:
            await ws.recv()
            await ws.send('{"type":"whoami","id":1}')
            assert json.loads(await ws.recv())["data"]["user"] == "bob"


async def test_connect_hook_that_crashes_gives_500_without_detail() -> None:
    app = fastcomm.App()

    @app.on_connect
    def broken(request: fastcomm.ConnectRequest) -> None:
        raise RuntimeError("secret-dsn")

    async with running(app) as server:
        raw, status, head = await RawWS.connect("127.0.0.1", server.port)
        assert status == 500
        body = await raw.reader.read()
        assert b"secret-dsn" not in head + body


async def test_origin_not_allowed_is_403() -> None:
    async with running(allowed_origins=["https://good.example"]) as server:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(server.url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
        async with websockets.connect(server.url, origin="https://good.example") as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv())["type"] == "welcome"


async def test_max_connections_gives_503_before_upgrade() -> None:
    async with running(max_connections=3) as server:
        clients = [await websockets.connect(server.url) for _ in range(3)]
        for ws in clients:
            await ws.recv()
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(server.url)
        assert info.value.response.status_code == 503
        await clients[0].close()
        await eventually(lambda: len(server.node.connections) == 2)
        async with websockets.connect(server.url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
        for ws in clients[1:]:
            await ws.close()


async def test_rate_limit_errors_then_4029() -> None:
    async with running(rate_limit=1, rate_burst=5, rate_limit_close_after=10) as server:
        raw, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        await raw.recv_frame()
        for i in range(30):
            raw.send_text(json.dumps({"type": "ping", "id": i}))
        code, payloads = await raw.recv_until_close()
        replies = [json.loads(p) for p in payloads]
        assert [r["type"] for r in replies[:5]] == ["pong"] * 5
        limited = [r for r in replies if r["type"] == "error"]
        assert limited and all(r["code"] == "rate_limited" for r in limited)
        assert [r["id"] for r in limited] == list(range(5, 5 + len(limited)))
        assert code == 4029


async def test_unknown_path_is_404_and_plain_get_on_ws_path_is_426() -> None:
    async with running() as server:
        assert (await http_get(server.port, "/nope"))[0] == 404
        assert (await http_get(server.port, "/ws"))[0] == 426


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Flood(fastcomm.Message, tag="flood"):
    count: int
    size: int


flood_app = fastcomm.App()


@flood_app.on(Flood)
def flood(msg: Flood, conn: fastcomm.Connection) -> int:
    payload = {"type": "blob", "data": "x" * msg.size}
    sent = 0
    for _ in range(msg.count):
        if not conn.send(payload):
            break
        sent += 1
    return sent


async def test_slow_consumer_is_closed_with_4008_and_memory_stays_bounded() -> None:
    limit = 1024 * 1024
    async with running(flood_app, max_outbound_buffer=limit) as server:
        slow, status, _ = await RawWS.connect("127.0.0.1", server.port)
        sock = slow.writer.transport.get_extra_info("socket")
        assert status == 101
        await slow.recv_frame()
        # A healthy client next to it keeps being served.
        async with websockets.connect(server.url) as healthy:
            await healthy.recv()
            before = _rss_kib()
            # 200 MB requested; the client never reads.
            slow.writer.transport.pause_reading()
            slow.send_text(json.dumps({"type": "flood", "id": 1, "count": 2000, "size": 100_000}))
            await eventually(lambda: server.node.stats.slow_consumers == 1, timeout=10)
            grown = _rss_kib() - before
            assert grown < 20 * 1024, f"server memory grew by {grown} KiB"
            await healthy.send('{"type":"ping","id":1}')
            assert json.loads(await healthy.recv()) == {"type": "pong", "id": 1}
            # When the slow client reads again it finds the data, then 4008.
            slow.writer.transport.resume_reading()
            code, _ = await slow.recv_until_close(timeout=10)
            assert code == 4008
            assert sock is not None
        await eventually(lambda: len(server.node.connections) == 0)
        assert (await status_of(server))["slow_consumers"] == 1


async def test_handshake_timeout_drops_a_silent_tcp_client() -> None:
    async with running(handshake_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # Nothing is sent; the server must give up on its own.
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
        assert len(server.node.connections) == 0
