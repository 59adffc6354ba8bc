"""granian's embedded HTTP server as fastcomm runs it (``serve_embedded``, behind
``--api-port``), with handlers of the test's own, over real sockets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fastcomm.http.types import Request, Response
from fastcomm.transports.granian.rsgi_http import RsgiHttp, serve_embedded
from tests.integration.conftest import free_port

TIMEOUT = 5.0


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1]), body


async def handler(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("a secret detail")
    return Response(200, b"echo " + request.body)


async def test_a_handler_that_raises_is_a_500_without_detail_and_the_server_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve_embedded(handler, "127.0.0.1", free_port(), max_body=100)
    try:
        with caplog.at_level(logging.ERROR, logger="fastcomm.transports.granian"):
            status, body = await exchange(server.port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body) == (500, b"internal server error\n")
        assert "HTTP endpoint failed on GET /boom" in caplog.text
        assert "a secret detail" in caplog.text  # in the log (traceback), not the answer
        post = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
        assert await exchange(server.port, post) == (200, b"echo hi")
    finally:
        await server.stop()


async def test_stop_is_idempotent_and_the_state_shows_in_repr() -> None:
    port = free_port()
    server = await serve_embedded(handler, "127.0.0.1", port, max_body=100)
    assert server.running and repr(server) == f"<EmbeddedServer http://127.0.0.1:{port} running>"
    await server.stop()
    assert not server.running and repr(server).endswith(" stopped>")
    await asyncio.wait_for(server.stop(), 1)  # already stopped: returns at once
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_impossible_arguments_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="port between 1 and 65535"):
        await serve_embedded(handler, "127.0.0.1", 0, max_body=100)
    with pytest.raises(ValueError, match="max_body must be 0 or more"):
        RsgiHttp(handler, max_body=-1)
