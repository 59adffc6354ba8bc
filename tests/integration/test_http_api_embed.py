"""HttpApi served by embedded granian (RsgiHttp) inside a uvloop event loop, over real HTTP.

Each test runs its own ``uvloop.run(...)``: the loop is uvloop, granian's
worker runs on it, and in the coexistence test a fastcomm WebSocket server
(picows) shares the loop. The schemathesis run fuzzes the served OpenAPI
document against the same kind of server, its loop in a background thread.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, settings

import fastcomm
from fastcomm.http.api import HttpApi
from fastcomm.transports.granian import EmbeddedServer, serve_embedded
from tests.unit.test_http_api_backend import MemoryBackend

KEY = "integration-key"
MAX_BODY = 2048


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(coro: Coroutine[Any, Any, None]) -> None:
    uvloop.run(asyncio.wait_for(coro, 30))


def post(
    port: int, path: str, body: bytes, headers: dict[str, str | None] | None = None
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 request on a fresh connection (blocking: run it in a thread);
    the key is sent unless ``headers`` maps ``X-API-Key`` to None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        given = {"X-API-Key": KEY, "Content-Type": "application/json", **(headers or {})}
        sent = {name: value for name, value in given.items() if value is not None}
        conn.request("GET" if path.endswith(".json") else "POST", path, body, sent)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


async def serve_api(
    backend: MemoryBackend, max_body: int = MAX_BODY
) -> tuple[HttpApi, EmbeddedServer]:
    api = HttpApi(backend, api_key=KEY, max_body=max_body)
    server = await serve_embedded(
        api.handle, "127.0.0.1", free_port(), max_body, too_large=api.too_large
    )
    return api, server


def test_publish_then_history_over_http_in_uvloop() -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        _, server = await serve_api(MemoryBackend())
        try:
            body = json.dumps({"channel": "chat:1", "data": {"text": "hello"}}).encode()
            status, reply = await asyncio.to_thread(post, server.port, "/api/publish", body)
            assert status == 200 and reply["result"]["offset"] == 1
            epoch = reply["result"]["epoch"]
            query = json.dumps({"channel": "chat:1", "limit": 10}).encode()
            status, reply = await asyncio.to_thread(post, server.port, "/api/history", query)
            assert (status, reply) == (
                200,
                {
                    "result": {
                        "publications": [{"data": {"text": "hello"}, "offset": 1}],
                        "offset": 1,
                        "epoch": epoch,
                    }
                },
            )
            status, doc = await asyncio.to_thread(
                post, server.port, "/api/openapi.json", b"", {"X-API-Key": None}
            )
            assert status == 200 and "/api/history" in doc["paths"]
        finally:
            await server.stop()
        assert not server.running

    run(main())


def test_wrong_key_is_401_over_http() -> None:
    async def main() -> None:
        backend = MemoryBackend()
        _, server = await serve_api(backend)
        try:
            body = b'{"channel": "a", "data": 1}'
            for headers in (
                {"X-API-Key": "nope"},
                {"X-API-Key": None, "Authorization": "Bearer x"},
                {"X-API-Key": None},
            ):
                status, reply = await asyncio.to_thread(
                    post, server.port, "/api/publish", body, headers
                )
                assert status == 401 and reply["error"]["code"] == 101
            auth: dict[str, str | None] = {"X-API-Key": None, "Authorization": f"apikey {KEY}"}
            status, _ = await asyncio.to_thread(post, server.port, "/api/publish", body, auth)
            assert status == 200
            assert (await backend.broker.position("a")).offset == 1
        finally:
            await server.stop()

    run(main())


def send_raw(port: int, head: bytes, body: bytes) -> tuple[int, bytes]:
    """Write a hand-made request; return the status and body of the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        headers, _, rest = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        return int(headers.split(b" ", 2)[1]), rest


def test_oversized_bodies_are_413_by_content_length_and_while_reading() -> None:
    async def main() -> None:
        backend = MemoryBackend()
        _, server = await serve_api(backend)
        try:
            big = json.dumps({"channel": "a", "data": "x" * MAX_BODY}).encode()
            status, reply = await asyncio.to_thread(post, server.port, "/api/publish", big)
            assert status == 413
            assert reply["error"] == {
                "code": 106,
                "message": f"request body is larger than {MAX_BODY} bytes",
            }
            head = (
                b"POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() + b"\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (len(big), big)
            status, raw = await asyncio.to_thread(send_raw, server.port, head, chunk + b"0\r\n\r\n")
            assert status == 413 and json.loads(raw)["error"]["code"] == 106
            small = b'{"channel":"a","data":1}'
            chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)
            status, raw = await asyncio.to_thread(send_raw, server.port, head, chunked)
            assert status == 200 and json.loads(raw)["result"]["offset"] == 1
            assert (await backend.broker.position("a")).offset == 1
        finally:
            await server.stop()

    run(main())


def test_granian_shares_a_uvloop_loop_with_a_fastcomm_websocket_server() -> None:
    """HTTP publish (granian) reaches a WebSocket subscriber (picows), one uvloop loop."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, uvloop.Loop)
        app = fastcomm.App()
        ws_server = fastcomm.Server(app, port=0)
        await ws_server.start()
        loops: list[asyncio.AbstractEventLoop] = []

        class AppBackend(MemoryBackend):
            async def publish(self, channel: str, data: Any, **options: Any) -> Any:
                loops.append(asyncio.get_running_loop())
                return await app.publish(channel, data, **options)

        api = HttpApi(AppBackend(), api_key=KEY, max_body=MAX_BODY)
        http_server = await serve_embedded(api.handle, "127.0.0.1", free_port(), MAX_BODY)
        client = await fastcomm.Client.connect(ws_server.url)
        try:
            sub = await client.subscribe("news")
            body = json.dumps({"channel": "news", "data": {"n": 1}}).encode()
            status, reply = await asyncio.to_thread(post, http_server.port, "/api/publish", body)
            assert status == 200
            pub = await sub.receive(5)
            assert (pub.channel, pub.offset, pub.data) == (
                "news",
                reply["result"]["offset"],
                {"n": 1},
            )
            assert loops == [loop]  # the API handler ran on this very uvloop loop
        finally:
            await client.close()
            await http_server.stop()
            await ws_server.stop()

    run(main())


# -- schemathesis ------------------------------------------------------------------
import schemathesis  # noqa: E402 - only this part of the module needs it

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    """A real fastcomm server with its HTTP API on its own port, and one subscriber."""
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    api_port = free_port()
    server = fastcomm.Server(port=0, api_key=KEY, api_port=api_port)

    async def start() -> fastcomm.Client:
        await server.start()
        client = await fastcomm.Client.connect(server.url)
        await client.subscribe("room")
        return client

    client = asyncio.run_coroutine_threadsafe(start(), loop).result(30)

    async def stop() -> None:
        await client.close()
        await server.stop()

    try:
        yield f"http://127.0.0.1:{api_port}"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def api_schema(live_api: str) -> Any:
    return schemathesis.openapi.from_url(f"{live_api}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_no_server_errors_and_responses_conform(case: Any) -> None:
    # Schema-valid requests may still be refused (e.g. 416 for a `since` from another
    # epoch, 400 for a too long channel name), so positive_data_acceptance is not checked.
    case.call_and_validate(headers={"X-API-Key": KEY}, checks=CHECKS)
