"""The ASGI transport at its edges, under real ASGI servers (uvicorn, granian) on free
ports: WebSocket paths it does not serve, peers that vanish mid-stream, echo writes
beyond the outbound bound, and lifespan failures."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
import websockets
from uvicorn.lifespan.on import LifespanOn

import fastcomm
from fastcomm.channels.memory import MemoryBroker
from fastcomm.config import build_config
from fastcomm.transports.asgi import AsgiApp
from tests.integration.conftest import eventually, free_port, http_get
from tests.integration.rawws import RawWS
from tests.integration.test_transports import app as flood_app
from tests.integration.transports import served

ASGI = ("asgi-uvicorn", "granian")
TIMEOUT = 10.0


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


@pytest.fixture
def uvicorn_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """What uvicorn logs, each line once: a handler of its own on ``uvicorn.error``, so
    that it does not matter whether the logger propagates to the root (it stops once
    some uvicorn in this process applied its logging config, which depends on which
    tests ran before)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.error"):
            yield lambda: [record.getMessage() for record in records]
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("transport", ASGI)
async def test_a_websocket_on_a_path_that_is_not_served_is_404(transport: str) -> None:
    async with served(None, transport) as server:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/elsewhere"):
                pass
        assert refused.value.response.status_code == 404
        assert not server.node.connections
        async with websockets.connect(server.url) as ws:  # the real path still works
            assert json.loads(await ws.recv())["type"] == "welcome"


@pytest.mark.parametrize("transport", ASGI)
async def test_a_peer_gone_in_the_middle_of_a_flood_is_detached(transport: str) -> None:
    async with served(flood_app, transport) as server:
        ws = await websockets.connect(server.url, max_queue=1)
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(json.dumps({"type": "flood", "id": 1, "count": 400, "size": 50_000}))
        await asyncio.wait_for(ws.recv(), TIMEOUT)  # the flood is under way
        ws.transport.abort()
        await eventually(lambda: not server.node.connections, timeout=TIMEOUT)
        status = json.loads((await http_get(server.port, "/status"))[1])
        assert (status["connections"], status["sessions_resumable"]) == (0, 1)
        async with websockets.connect(server.url) as other:  # the server carries on
            assert json.loads(await other.recv())["type"] == "welcome"
            await other.send('{"type":"ping","id":1}')
            assert json.loads(await other.recv()) == {"type": "pong", "id": 1}


@pytest.mark.parametrize("transport", ASGI)
async def test_echo_writes_beyond_the_outbound_bound_close_4008(transport: str) -> None:
    # Echoed frames bypass the Connection; the ASGI outbox holds them to the same bound.
    limit = 64 * 1024
    options = {"echo": True, "max_outbound_buffer": limit, "max_message_size": limit}
    async with served(None, transport, **options) as server:
        ws, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        try:
            for _ in range(300):  # never reading: the server cannot send the echoes
                ws.send_frame(2, b"x" * 60_000)
                await ws.writer.drain()
                if server.node.stats.slow_consumers:
                    break
            await eventually(lambda: server.node.stats.slow_consumers == 1, timeout=TIMEOUT)
            code, echoed = await ws.recv_until_close(TIMEOUT)
        except ConnectionResetError:
            # granian closes a socket holding unread frames: the kernel resets it.
            assert transport == "granian"
        else:
            assert code == 4008
            assert echoed and all(frame == b"x" * 60_000 for frame in echoed)
        assert server.node.stats.slow_consumers == 1
        ws.close()
        await eventually(lambda: not server.node.connections, timeout=TIMEOUT)


# -- lifespan -------------------------------------------------------------------------------


class BrokenCloseBroker(MemoryBroker):
    """Its handles fail to close (what a node closes at shutdown)."""

    def start(self, deliver: Any, **node: Any) -> Any:
        handle = super().start(deliver, **node)
        close = handle.close

        async def broken() -> None:
            await close()
            raise RuntimeError("the backend did not say goodbye")

        handle.close = broken  # type: ignore[method-assign]
        return handle


async def run_uvicorn(asgi: Any, **options: Any) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    # log_config None: uvicorn's records reach the root logger (and caplog).
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=free_port(), log_config=None, log_level="info", **options
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    await eventually(lambda: server.started or task.done(), timeout=TIMEOUT)
    return server, task


async def test_a_shutdown_that_fails_is_reported_to_the_asgi_server(
    caplog: pytest.LogCaptureFixture, uvicorn_log: Callable[[], list[str]]
) -> None:
    app = fastcomm.App()
    app.use_broker(BrokenCloseBroker())
    asgi = AsgiApp(app, build_config({}, env={}))
    server, task = await run_uvicorn(asgi, lifespan="on")
    assert server.started and asgi.node.accepting
    server.should_exit = True
    await asyncio.wait_for(task, TIMEOUT)
    assert logged(caplog, "shutdown failed")  # fastcomm's log, with the traceback
    assert "the backend did not say goodbye" in uvicorn_log()  # the reason, to uvicorn
    assert "Application shutdown failed. Exiting." in uvicorn_log()
    assert asgi.lifecycle.stopped and not asgi.node.accepting
    await asgi.shutdown()  # once stopped, stopping again does nothing


async def test_invalid_settings_refuse_the_lifespan_startup_in_process(
    monkeypatch: pytest.MonkeyPatch, uvicorn_log: Callable[[], list[str]]
) -> None:
    monkeypatch.setenv("FASTCOMM_MAX_CONNECTIONS", "many")
    app = fastcomm.App()  # an App is an ASGI app, configured from FASTCOMM_*
    # uvicorn's own lifespan runner (its Server would sys.exit on the failure).
    config = uvicorn.Config(app, lifespan="on", log_config=None)
    config.load()
    lifespan = LifespanOn(config)
    await lifespan.startup()
    assert lifespan.startup_failed and lifespan.should_exit
    assert app.node is None
    reasons = [m for m in uvicorn_log() if m.startswith("fastcomm: ")]
    assert len(reasons) == 1 and "FASTCOMM_MAX_CONNECTIONS" in reasons[0]


async def test_invalid_settings_without_a_lifespan_fail_each_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTCOMM_MAX_CONNECTIONS", "many")
    app = fastcomm.App()
    server, task = await run_uvicorn(app, lifespan="off")
    try:
        assert server.started
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{server.config.port}/ws"):
                pass
        assert refused.value.response.status_code == 500
        assert app.node is None  # nothing was started
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
