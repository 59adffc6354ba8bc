"""``fastcomm serve --workers 2`` on Redis: one port, two worker processes, one server.

Clients spread over both workers (an app handler answers with its worker id);
``/status`` and ``/metrics`` count every worker's connections; a SIGKILLed
worker is restarted and its client resumes on the other; SIGTERM drains both
(1001, replies in flight kept) and the supervisor exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

import fastcomm
from fastcomm.loadgen.target import ChildServer, free_port
from tests.integration.conftest import ServerProcess, http_get
from tests.integration.docblocks import DOCS, ENV, ROOT, block, commands, welcome
from tests.integration.test_client_channels import FAST
from tests.integration.test_http_api_server import KEY, api
from tests.redisserver import RedisServer
from tests.traced import traced
from tests.waiting import eventually

pytestmark = pytest.mark.slow

APP = """
import asyncio
import os

import fastcomm

app = fastcomm.App()


class Whoami(fastcomm.Message, tag="whoami"):
    pass


class Slow(fastcomm.Message, tag="slow"):
    seconds: float


@app.on(Whoami)
def whoami(msg: Whoami, conn: fastcomm.Connection) -> dict:
    return {"worker": app.node.config.worker_id, "pid": os.getpid()}


@app.on(Slow)
async def slow(msg: Slow, conn: fastcomm.Connection) -> str:
    await asyncio.sleep(msg.seconds)
    return "done"
"""


class Whoami(fastcomm.Message, tag="whoami"):
    pass


@pytest.fixture
def workers(
    tmp_path: Path, redis_url: str, server_process: Callable[..., ServerProcess]
) -> Callable[..., ServerProcess]:
    """Start ``fastcomm serve APP --workers 2 --broker REDIS ARGS`` (it returns once
    one worker listens: see :func:`both_listening`)."""
    app = tmp_path / "whoami.py"
    app.write_text(APP)

    def start(*args: str) -> ServerProcess:
        return server_process(f"{app}:app", "--broker", redis_url, "--workers", "2", *args)

    return start


async def both_listening(proc: ServerProcess) -> None:
    await eventually(lambda: proc.output().count("fastcomm listening on") >= 2, 20,
                     proc.output)  # fmt: skip


async def whoami(ws: Any, rid: int) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "whoami", "id": rid}))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("id") == rid:
            return reply["data"]  # type: ignore[no-any-return]


async def status(port: int) -> dict[str, Any]:
    code, body = await http_get(port, "/status")
    assert code == 200
    return json.loads(body)  # type: ignore[no-any-return]


async def test_clients_spread_over_both_workers_and_status_counts_them_all(
    workers: Callable[..., ServerProcess],
) -> None:
    proc = workers()
    await both_listening(proc)
    sockets = [await websockets.connect(proc.url) for _ in range(16)]
    try:
        for ws in sockets:
            await ws.recv()  # the welcome
        seen = [await whoami(ws, 1) for ws in sockets]
        by_worker = {line["worker"] for line in seen}
        assert by_worker == {1, 2}, seen

        async def whole() -> dict[str, Any] | None:
            found = await status(proc.port)
            ok = found["connections"] == 16 and len(found["workers"]) == 2
            return found if ok else None

        found = await eventually(whole, 10, "the whole server's /status counts 16")
        assert found["worker"] in (1, 2) and found["pid"] in {s["pid"] for s in seen}
        per_worker = {line["worker"]: line["connections"] for line in found["workers"]}
        assert per_worker == {n: sum(s["worker"] == n for s in seen) for n in (1, 2)}
        answered = {(await status(proc.port))["worker"] for _ in range(30)}
        assert answered == {1, 2}  # HTTP requests land on both workers too

        async def metrics() -> bool:
            code, body = await http_get(proc.port, "/metrics")
            text = body.decode()
            lines = ("fastcomm_open_connections 16.0", "fastcomm_workers 2.0")
            lines += tuple(f'fastcomm_worker_open_connections{{worker="{n}"}}' for n in "12")
            return code == 200 and all(line in text for line in lines)

        await eventually(metrics, 10, "/metrics counts every worker's connections")
    finally:
        for ws in sockets:
            await ws.close()
    output = proc.output()
    assert "worker=1" in output and "worker=2" in output


async def test_a_sigkilled_worker_is_restarted_and_its_client_resumes_on_the_other(
    workers: Callable[..., ServerProcess],
) -> None:
    proc = workers("--session-checkpoint", "0.3")
    await both_listening(proc)
    client = await fastcomm.Client.connect(proc.url, types=[Whoami], **FAST)
    try:
        first = await client.call(Whoami())
        session = client.session
        os.kill(first["pid"], signal.SIGKILL)
        await eventually(lambda: client.reconnects >= 1 and client.connected, 15,
                         "the client reconnected")  # fmt: skip
        assert client.welcome is not None and client.welcome.resumed
        assert client.session == session
        again = await client.call(Whoami())
        assert again["pid"] != first["pid"]
        number = first["worker"]
        killed = f"worker {number} (pid {first['pid']}) exited with signal SIGKILL"
        await eventually(lambda: killed in proc.output(), 5, proc.output)
        await eventually(lambda: proc.output().count(f"worker {number} started") == 2, 10,
                         proc.output)  # fmt: skip
        await eventually(lambda: proc.output().count("fastcomm listening on") >= 3, 15,
                         proc.output)  # fmt: skip
    finally:
        await client.close()


async def test_sigterm_drains_both_workers_with_1001_and_exits_0(
    workers: Callable[..., ServerProcess],
) -> None:
    proc = workers()
    await both_listening(proc)
    sockets = [await websockets.connect(proc.url) for _ in range(12)]
    for ws in sockets:
        await ws.recv()
    seen = {(await whoami(ws, 1))["worker"] for ws in sockets}
    assert seen == {1, 2}
    busy = sockets[0]
    await busy.send(json.dumps({"type": "slow", "id": 2, "seconds": 0.5}))
    await asyncio.sleep(0.1)  # the request is in flight
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    reply = json.loads(await asyncio.wait_for(busy.recv(), 10))
    assert reply == {"type": "result", "id": 2, "data": "done"}  # answered, then closed
    for ws in sockets:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1001
    assert await asyncio.to_thread(proc.proc.wait, 20) == 0
    assert "all workers stopped" in proc.output()


async def test_the_http_api_is_served_by_worker_1_and_acts_on_both(
    workers: Callable[..., ServerProcess],
) -> None:
    api_port = free_port()
    proc = workers("--api-key", KEY, "--api-port", str(api_port))
    await both_listening(proc)
    sockets = [await websockets.connect(proc.url) for _ in range(12)]
    try:
        for ws in sockets:
            await ws.recv()
        seen = {(await whoami(ws, 1))["worker"] for ws in sockets}
        assert seen == {1, 2}
        async with asyncio.timeout(10):
            code, reply = await api(api_port, "info", {})
        assert code == 200
        nodes = reply["result"]["nodes"]
        assert nodes[0]["worker"] == 1  # this node answered: worker 1
        assert len(nodes) == 2  # and the other node of the server is listed
    finally:
        for ws in sockets:
            await ws.close()


def test_more_than_one_worker_on_the_memory_broker_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastcomm", "serve", "--workers", "2"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "needs a broker shared between processes" in done.stderr


async def test_with_port_0_the_supervisor_picks_one_port_for_both(
    tmp_path: Path, redis_url: str
) -> None:
    log = tmp_path / "out.log"
    command = [sys.executable, "-m", "fastcomm", "serve", "--broker", redis_url]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--workers", "2", "--port", "0"],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        text = await eventually(lambda: log.read_text().count("fastcomm listening on") >= 2
                                and log.read_text(), 20, log.read_text)  # fmt: skip
        port = int(text.split("supervising 2 workers on 127.0.0.1:")[1].split()[0])
        assert port > 0 and text.count(f"ws://127.0.0.1:{port}/ws") == 2
        assert (await status(port))["worker"] in (1, 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0


async def test_the_docs_command_serves_two_workers(
    redis_server: RedisServer, redis_url: str
) -> None:
    ports = {"8000": str(free_port()), "6379": str(redis_server.port)}
    (argv,) = commands(block("workers-serve", DOCS / "WORKERS.md"), ports)
    server = ChildServer(argv, port=int(argv[-1]), env=traced(dict(ENV)), cwd=ROOT)
    server.start()
    try:
        await eventually(lambda: server.output().count("fastcomm listening on") >= 2, 20,
                         server.output)  # fmt: skip
        assert (await welcome(server.url))["type"] == "welcome"
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0


def test_an_unreachable_redis_stops_the_supervisor_before_any_worker() -> None:
    port = free_port()
    command = [sys.executable, "-m", "fastcomm", "serve", "--workers", "2"]
    command += ["--broker", f"redis://127.0.0.1:{port}/0", "--port", str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port} is unreachable" in lines[0], done.stderr
    assert "worker" not in done.stderr
