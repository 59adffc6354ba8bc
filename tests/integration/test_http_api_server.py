"""The HTTP server API on a real fastcomm server: HTTP in, WebSocket clients out."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

import fastcomm
from fastcomm.errors import ConfigError, StartupError
from tests.integration.conftest import eventually, free_port

KEY = "s3cret-key-for-tests"


def call(port: int, command: str, body: Any, key: str | None = KEY) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"apikey {key}"
        conn.request("POST", f"/api/{command}", json.dumps(body).encode(), headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


async def api(port: int, command: str, body: Any, key: str | None = KEY) -> tuple[int, Any]:
    return await asyncio.to_thread(call, port, command, body, key)


async def test_http_publish_reaches_websocket_subscribers_and_commands_act() -> None:
    port = free_port()
    async with fastcomm.Server(port=0, api_key=KEY, api_port=port) as server:
        alice = await fastcomm.Client.connect(server.url)
        async with await alice.subscribe("news") as sub:
            status, reply = await api(port, "publish", {"channel": "news", "data": {"n": 1}})
            assert status == 200
            assert reply["result"]["offset"] == 1
            pub = await asyncio.wait_for(sub.__anext__(), 5)
            assert (pub.channel, pub.offset, pub.data) == ("news", 1, {"n": 1})

            status, reply = await api(port, "channels", {})
            assert status == 200 and reply["result"]["channels"]["news"]["num_clients"] == 1
            status, reply = await api(port, "presence", {"channel": "news"})
            assert list(reply["result"]["presence"]) == [alice.session]
            status, reply = await api(port, "history", {"channel": "news", "limit": 10})
            assert [p["data"] for p in reply["result"]["publications"]] == [{"n": 1}]
            status, reply = await api(port, "info", {})
            assert status == 200 and reply["result"]["nodes"][0]["num_clients"] == 1

            status, reply = await api(port, "publish", {"channel": "news"}, key="wrong")
            assert status == 401 and "wrong" not in json.dumps(reply)
            status, reply = await api(port, "publish", {"channel": "bad name", "data": 1})
            assert status == 400

            status, _ = await api(port, "disconnect", {"session": alice.session})
            assert status == 200
            await eventually(lambda: not server.node.connections)
        await alice.close()


async def test_an_api_key_without_an_api_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="api_port"):
        fastcomm.Server(port=0, api_key=KEY)


async def test_a_busy_api_port_fails_the_start_and_releases_the_websocket_port() -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        api_port = busy.getsockname()[1]
        server = fastcomm.Server(port=port, api_key=KEY, api_port=api_port)
        with pytest.raises(StartupError, match=f"{api_port}: Address already in use"):
            await server.start()
    assert server.port == 0 and not server.node.accepting
    # The half-started server let go of its WebSocket port: it can be served again.
    async with fastcomm.Server(port=port) as again:
        assert again.port == port


def test_cli_serves_the_api_and_never_logs_the_key() -> None:
    ws_port, api_port = free_port(), free_port()
    cmd = [
        sys.executable, "-m", "fastcomm", "serve", "--port", str(ws_port),
        "--api-key", KEY, "--api-port", str(api_port), "--log-level", "debug",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        status: int | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, reply = call(api_port, "publish", {"channel": "a", "data": 1})
                break
            except OSError:
                time.sleep(0.05)
        assert status == 200, "the API did not answer"
        assert reply["result"]["offset"] == 1
        assert call(api_port, "publish", {"channel": "a", "data": 1}, key=None)[0] == 401
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode()
    assert proc.returncode == 0, output
    assert KEY not in output
