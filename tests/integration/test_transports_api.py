"""The HTTP server API on every transport: its own port on picows (embedded
granian), ``/api`` on the main port with the ASGI transports."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

import pytest

import fastcomm
from tests.integration.conftest import free_port
from tests.integration.transports import TRANSPORTS, served

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)

KEY = "transport-api-key"


def post(port: int, command: str, body: Any, key: str | None = KEY) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-API-Key"] = key
        conn.request("POST", f"/api/{command}", json.dumps(body).encode(), headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


async def test_http_publish_reaches_a_websocket_subscriber(transport: str) -> None:
    options: dict[str, Any] = {"api_key": KEY, "api_max_body": 4096}
    api_port = free_port() if transport == "picows" else None
    if api_port is not None:
        options["api_port"] = api_port
    async with served(None, transport, **options) as server:
        port = api_port if api_port is not None else server.port
        client = await fastcomm.Client.connect(server.url)
        try:
            async with await client.subscribe("news") as sub:
                body = {"channel": "news", "data": {"n": 1}}
                status, reply = await asyncio.to_thread(post, port, "publish", body)
                assert status == 200 and reply["result"]["offset"] == 1
                pub = await asyncio.wait_for(sub.__anext__(), 5)
                assert (pub.offset, pub.data) == (1, {"n": 1})
            status, _ = await asyncio.to_thread(post, port, "publish", body, None)
            assert status == 401
            big = {"channel": "news", "data": "x" * 5000}
            status, reply = await asyncio.to_thread(post, port, "publish", big)
            assert status == 413
        finally:
            await client.close()
