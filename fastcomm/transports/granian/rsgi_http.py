"""An RSGI application that serves one plain-HTTP endpoint, and a way to run it
with granian's embedded server on the running event loop (asyncio or uvloop).

The body is bounded: a ``Content-Length`` above ``max_body`` is refused with
413 before any of the body is read, and a body without one (chunked) is
refused as soon as what was read passes ``max_body``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.rsgi import Scope
from granian.server.embed import Server

from fastcomm.http.types import Request, Response
from fastcomm.transports.granian.sockets import ip_address, os_error

__all__ = ["EmbeddedServer", "RsgiHttp", "serve_embedded"]

log = logging.getLogger("fastcomm.transports.granian")

Handler = Callable[[Request], Awaitable[Response]]
TOO_LARGE = Response(413, b"request body too large\n")
_INTERNAL = Response(500, b"internal server error\n")


class HTTPProtocol(Protocol):
    """The part of granian's RSGI HTTP protocol object used here."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...


class RsgiHttp:
    """RSGI app: each HTTP request becomes a :class:`Request` for ``handler``, whose
    :class:`Response` is sent back. ``too_large`` is the answer to an oversized body."""

    def __init__(self, handler: Handler, max_body: int, too_large: Response = TOO_LARGE) -> None:
        if max_body < 0:
            raise ValueError("max_body must be 0 or more")
        self.handler = handler
        self.max_body = max_body
        self.too_large = too_large

    async def __rsgi__(self, scope: Scope, protocol: HTTPProtocol) -> None:
        headers: dict[str, str] = {}
        for name, value in scope.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body = await self._body(headers.get("content-length"), protocol)
        if isinstance(body, Response):
            self._send(protocol, body)
            return
        request = Request(scope.method, scope.path, scope.query_string, headers, body)
        try:
            response = await self.handler(request)
        except Exception:
            log.exception("HTTP endpoint failed on %s %s", scope.method, scope.path)
            response = _INTERNAL
        self._send(protocol, response)

    async def _body(self, length: str | None, protocol: HTTPProtocol) -> bytes | Response:
        if length is not None:
            if not length.strip().isdigit():
                return Response(400, b"invalid Content-Length\n")
            if int(length) > self.max_body:
                return self.too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > self.max_body:
                return self.too_large
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _send(protocol: HTTPProtocol, response: Response) -> None:
        headers = [("content-type", response.content_type), *response.headers]
        protocol.response_bytes(response.status, headers, response.body)


class EmbeddedServer:
    """A running embedded granian server; ``await stop()`` ends it."""

    def __init__(self, server: Server, task: asyncio.Task[None], host: str, port: int) -> None:
        self.server = server
        self.task = task
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedServer http://{self.host}:{self.port} {state}>"

    @property
    def running(self) -> bool:
        return not self.task.done()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let granian finish its worker, wait at most ``timeout`` s."""
        if self.task.done():
            return
        self.server.stop()  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def serve_embedded(
    handler: Handler,
    host: str,
    port: int,
    max_body: int,
    *,
    too_large: Response = TOO_LARGE,
    log_level: str = "error",
    ready_timeout: float = 5.0,
    ssl_cert: str | None = None,
    ssl_key: str | None = None,
) -> EmbeddedServer:
    """Serve ``handler`` over HTTP on ``host``:``port`` with granian in this event loop.

    Returns once the port accepts connections. ``port`` must be a real port:
    granian binds it itself and does not report the port it got for 0.
    Raises OSError when the server does not come up within ``ready_timeout``.
    With ``ssl_cert`` and ``ssl_key`` (PEM files) it serves https.
    """
    if not 0 < port < 65536:
        raise ValueError("serve_embedded needs a port between 1 and 65535")
    app = RsgiHttp(handler, max_body, too_large)
    server = Server(
        app,
        address=ip_address(host),
        port=port,
        interface=Interfaces.RSGI,
        websockets=False,
        log_level=LogLevels(log_level),
        ssl_cert=None if ssl_cert is None else Path(ssl_cert),
        ssl_key=None if ssl_key is None else Path(ssl_key),
    )
    task = asyncio.create_task(server.serve(), name=f"granian-{host}:{port}")
    running = EmbeddedServer(server, task, host, port)
    try:
        await _until_listening(task, _probe_host(host), port, ready_timeout)
    except BaseException:
        await running.stop()
        raise
    return running


def _probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


async def _until_listening(task: asyncio.Task[None], host: str, port: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await asyncio.sleep(0)  # granian binds in the task's first step; a failure ends it there
    while True:
        if task.done():
            error = None if task.cancelled() else task.exception()
            cause = os_error(error)
            if cause is not None:
                raise cause from error
            raise OSError(f"granian stopped before serving on {host}:{port}") from error
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise OSError(f"granian is not listening on {host}:{port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
