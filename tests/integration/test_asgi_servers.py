"""The ASGI ways in: a FastAPI mount, and the uvicorn / granian / fastcomm command lines.

The command-line tests run ``examples/asgi_app.py`` in a subprocess on a free
port, configured only through ``FASTCOMM_*`` variables (the ASGI server owns
the command line), then stop it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets
from fastapi import FastAPI

import fastcomm
from fastcomm.transports.asgi import AsgiApp
from tests.integration.conftest import eventually, free_port, http_get
from tests.traced import traced

ROOT = Path(__file__).resolve().parents[2]


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


async def test_fastapi_mount_serves_ws_and_endpoints_below_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTCOMM_MAX_CONNECTIONS", "1")
    realtime = fastcomm.App()

    @realtime.on(Add)
    def add(msg: Add, conn: fastcomm.Connection) -> int:
        return msg.a + msg.b

    api = FastAPI()

    @api.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    api.mount("/realtime", realtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        # FastAPI runs no sub-app lifespan: the node starts with the first request.
        assert realtime.node is None
        assert await http_get(port, "/realtime/healthz") == (200, b"ok\n")
        assert realtime.node is not None and realtime.node.accepting
        assert await http_get(port, "/hello") == (200, b'{"hello":"world"}')
        assert (await http_get(port, "/healthz"))[0] == 404  # FastAPI's, not ours
        code, body = await http_get(port, "/realtime/asyncapi.json")  # the contract, below it
        assert code == 200 and "add" in json.loads(body)["operations"]
        assert (await http_get(port, "/realtime/docs"))[0] == 200
        url = f"ws://127.0.0.1:{port}/realtime/ws"
        async with await fastcomm.Client.connect(url) as client:
            assert await client.call(Add(a=2, b=3)) == 5
            # FASTCOMM_MAX_CONNECTIONS=1 applies: settings came from the environment.
            with pytest.raises(websockets.InvalidStatus) as info:
                await websockets.connect(url)
            assert info.value.response.status_code == 503
            code, body = await http_get(port, "/realtime/status")
            assert code == 200 and json.loads(body)["connections"] == 1
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
    # Nobody drained it: that is the parent's job (await AsgiApp.shutdown()).
    assert realtime.node is not None


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    env.update({f"FASTCOMM_{name.upper()}": value for name, value in settings.items()})
    return env


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextmanager
def _process(cmd: list[str], port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=traced(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out = proc.communicate()[0].decode(errors="replace")
                raise AssertionError(f"server did not start: {out}")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _commands(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--app-dir", "examples", "asgi_app:app",
                "--port", str(port), "--log-level", "warning"]  # fmt: skip
    if kind == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--working-dir",
                "examples", "--port", str(port), "asgi_app:app"]  # fmt: skip
    return [sys.executable, "-m", "fastcomm", "serve", "examples/asgi_app.py:app",
            "--transport", "granian", "--port", str(port)]  # fmt: skip


# What a client connected during SIGTERM sees (see docs/TRANSPORTS.md): uvicorn closes
# WebSockets itself with 1012 and granian drops them, both before the lifespan drain;
# fastcomm serve --transport granian drains first (1001). And the exit status: uvicorn
# re-raises the signal once it has shut down.
_ON_SIGTERM: dict[str, Any] = {"uvicorn": 1012, "granian": None, "fastcomm-granian": 1001}
_EXIT = {"uvicorn": -signal.SIGTERM, "granian": 0, "fastcomm-granian": 0}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["uvicorn", "granian", "fastcomm-granian"])
async def test_command_line_serves_the_example_app(kind: str) -> None:
    port = free_port()
    env = _env(max_message_size="2048", rate_burst="7")
    with _process(_commands(kind, port), port, env) as proc:
        url = f"ws://127.0.0.1:{port}/ws"
        async with websockets.connect(url, subprotocols=["fastcomm.v1.json"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "fastcomm.v1.json"
            welcome = json.loads(await ws.recv())
            assert welcome["max_message_size"] == 2048  # from FASTCOMM_MAX_MESSAGE_SIZE
            await ws.send('{"type":"add","id":1,"a":40,"b":2}')
            assert json.loads(await ws.recv()) == {"type": "result", "id": 1, "data": 42}
        async with await fastcomm.Client.connect(url) as client:
            assert await client.call(Add(a=1, b=2)) == 3
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(url, subprotocols=["bogus"])  # type: ignore[list-item]
        assert info.value.response.status_code == 400
        code, body = await http_get(port, "/status")
        assert code == 200 and json.loads(body)["handshake_rejects"] == {"400": 1}
        ws = await websockets.connect(url)
        await ws.recv()
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        rcvd = closed.value.rcvd
        assert (None if rcvd is None else rcvd.code) == _ON_SIGTERM[kind]
        assert await asyncio.to_thread(proc.wait, 20) == _EXIT[kind]


async def test_asgi_app_started_and_drained_by_the_parent_lifespan() -> None:
    realtime = AsgiApp(fastcomm.App(), fastcomm.build_config({"max_connections": 5}, env={}))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await realtime.startup()
        yield
        await realtime.shutdown()

    api = FastAPI(lifespan=lifespan)
    api.mount("/realtime", realtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        assert realtime.node.accepting  # started by the parent, before any request
        async with websockets.connect(f"ws://127.0.0.1:{port}/realtime/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            assert (await http_get(port, "/realtime/readyz")) == (200, b"ready\n")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
    assert realtime.lifecycle.stopped and not realtime.node.accepting
    assert realtime.node.app.node is None  # released


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["uvicorn", "granian"])
def test_invalid_settings_stop_the_asgi_server_from_starting(kind: str) -> None:
    port = free_port()
    env = _env(max_conections="10")  # misspelt: an unknown FASTCOMM_ variable
    done = subprocess.run(
        _commands(kind, port), cwd=ROOT, env=env, capture_output=True, timeout=30, check=False
    )
    assert done.returncode != 0
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert "unknown environment variable FASTCOMM_MAX_CONECTIONS" in output
