"""Connection lifecycle: tracking, cleanup, heartbeat, drain, scale."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
from collections.abc import Callable
from typing import Any

import pytest
import websockets

import fastcomm
from tests.integration.conftest import ServerProcess, eventually, http_get, running, status_of
from tests.integration.rawws import RawWS


async def test_http_endpoints() -> None:
    async with running() as server:
        assert await http_get(server.port, "/healthz") == (200, b"ok\n")
        assert await http_get(server.port, "/readyz") == (200, b"ready\n")
        async with websockets.connect(server.url) as ws:
            await ws.recv()
            await ws.send('{"type":"ping","id":1}')
            await ws.recv()
            status = await status_of(server)
            assert status["connections"] == 1
            assert status["sessions"] == 1
            assert status["messages_in"] == 1
            assert status["messages_out"] == 2  # welcome + pong
            assert status["messages_by_type"] == {"ping": 1}
            assert status["uptime"] >= 0


async def test_sessions_are_tracked_by_id_and_user() -> None:
    app = fastcomm.App()

    @app.on_connect
    def who(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
        return fastcomm.Identity(user=request.query.get("user"))

    async with running(app) as server:
        a1 = await websockets.connect(server.url + "?user=ann")
        a2 = await websockets.connect(server.url + "?user=ann")
        b = await websockets.connect(server.url + "?user=bob")
        ids = [json.loads(await ws.recv())["session"] for ws in (a1, a2, b)]
        assert len(set(ids)) == 3
        assert {s.id for s in server.node.sessions.of_user("ann")} == set(ids[:2])
        assert server.node.sessions.get(ids[2]) is not None
        await a1.close()
        await eventually(lambda: len(server.node.sessions) == 2)
        assert {s.id for s in server.node.sessions.of_user("ann")} == {ids[1]}
        await a2.close()
        await b.close()
        await eventually(lambda: len(server.node.sessions) == 0)
        assert server.node.sessions.by_user == {}


async def test_abrupt_disconnects_leave_zero_sessions() -> None:
    async with running() as server:
        raws = []
        for _ in range(50):
            raw, status, _ = await RawWS.connect("127.0.0.1", server.port)
            assert status == 101
            await raw.recv_frame()
            raws.append(raw)
        assert (await status_of(server))["sessions"] == 50
        for raw in raws[:25]:
            raw.abort()  # RST
        for raw in raws[25:]:
            raw.close()  # FIN without a close frame
        await eventually(lambda: len(server.node.connections) == 0)
        status = await status_of(server)
        assert status["connections"] == 0
        assert status["sessions"] == 0


async def test_heartbeat_closes_a_peer_that_never_answers_pings() -> None:
    async with running(heartbeat=0.3, heartbeat_timeout=0.3) as server:
        # RawWS never answers pings: a half-open peer as far as the server can tell.
        raw, _, _ = await RawWS.connect("127.0.0.1", server.port)
        await raw.recv_frame()
        async with websockets.connect(server.url) as healthy:  # answers pings
            await healthy.recv()
            opcode, _ = await raw.recv_frame(timeout=3)
            assert opcode == 9  # the server's ping
            code, _ = await raw.recv_until_close(timeout=3)
            assert code == 1001
            await eventually(lambda: len(server.node.connections) == 1)
            await asyncio.sleep(1.0)  # several heartbeat periods
            await healthy.send('{"type":"ping","id":1}')
            assert json.loads(await healthy.recv()) == {"type": "pong", "id": 1}
        await eventually(lambda: len(server.node.sessions) == 0)


class Slow(fastcomm.Message, tag="slow"):
    seconds: float


async def test_drain_waits_for_inflight_handlers_and_readyz_is_503() -> None:
    app = fastcomm.App()
    finished: list[bool] = []

    @app.on(Slow)
    async def slow(msg: Slow, conn: fastcomm.Connection) -> None:
        await asyncio.sleep(msg.seconds)
        finished.append(True)

    server = fastcomm.Server(app, port=0, drain_timeout=5)
    await server.start()
    ws = await websockets.connect(server.url)
    await ws.recv()
    await ws.send('{"type":"slow","seconds":0.5}')
    await eventually(lambda: len(server.node.router.inflight) == 1)
    stopping = asyncio.create_task(server.stop())
    await eventually(lambda: not server.node.accepting)
    assert (await http_get(server.port, "/readyz"))[0] == 503
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(server.url)
    assert info.value.response.status_code == 503
    await stopping
    assert finished == [True]
    with pytest.raises(websockets.ConnectionClosed):
        await ws.recv()
    assert ws.close_code == 1001


async def test_drain_delivers_inflight_replies_and_answers_new_requests_unavailable() -> None:
    app = fastcomm.App()

    @app.on(Slow)
    async def slow(msg: Slow, conn: fastcomm.Connection) -> str:
        await asyncio.sleep(msg.seconds)
        return "done"

    server = fastcomm.Server(app, port=0, drain_timeout=5)
    await server.start()
    async with websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.send('{"type":"slow","id":1,"seconds":0.5}')
        await eventually(lambda: len(server.node.router.inflight) == 1)
        stopping = asyncio.create_task(server.stop())
        await eventually(lambda: server.node.draining)
        await ws.send('{"type":"ping","id":2}')
        refused = json.loads(await ws.recv())
        assert (refused["id"], refused["code"]) == (2, "unavailable")
        reply = json.loads(await ws.recv())
        assert reply == {"type": "result", "id": 1, "data": "done"}  # answered, then closed
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
        await stopping


@pytest.mark.slow
async def test_sigterm_closes_every_client_with_1001_and_exits_0(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process()
    clients = [await websockets.connect(proc.url) for _ in range(20)]
    for ws in clients:
        await ws.recv()
    proc.proc.send_signal(signal.SIGTERM)
    for ws in clients:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1001
    assert await asyncio.to_thread(proc.proc.wait, 15) == 0


@pytest.mark.slow
async def test_two_thousand_concurrent_connections() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 5000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    async with running(max_connections=5000) as server:
        sem = asyncio.Semaphore(200)

        async def open_one() -> Any:
            async with sem:
                ws = await websockets.connect(server.url, ping_interval=None)
                await ws.recv()
                return ws

        clients = await asyncio.gather(*(open_one() for _ in range(2000)))
        assert len(server.node.connections) == 2000
        assert (await status_of(server))["sessions"] == 2000

        async def ping(ws: Any, i: int) -> dict[str, Any]:
            await ws.send(json.dumps({"type": "ping", "id": i}))
            return json.loads(await ws.recv())  # type: ignore[no-any-return]

        replies = await asyncio.gather(*(ping(ws, i) for i, ws in enumerate(clients)))
        assert [r["id"] for r in replies] == list(range(2000))
        await asyncio.gather(*(ws.close() for ws in clients))
        await eventually(lambda: len(server.node.connections) == 0, timeout=20)
        assert (await status_of(server))["sessions"] == 0
