"""The Origin check on all three transports, over real sockets, with ``websockets``
sending the ``Origin`` (and the ``Host``) a browser page would.

By default only a page on the host the upgrade was sent to gets in; with
``allowed_origins`` only those origins do; a client that sends no ``Origin``
is never checked. Refusals are 403 naming ``--allowed-origin``, and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets

import fastcomm
from tests.integration.transports import TRANSPORTS, Served, served

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)

TIMEOUT = 10.0
app = fastcomm.App()


async def upgrade(
    server: Served,
    origin: str | None,
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Upgrade with ``Origin: origin`` (None: none) and ``Host: host`` (None: the
    server's address); (101, b"") once the welcome came, else (status, body)."""
    authority = host or f"127.0.0.1:{server.port}"
    uri = f"ws://{authority}{server.node.config.path}"
    options: Any = {"origin": origin, "additional_headers": headers}
    try:
        async with websockets.connect(uri, host="127.0.0.1", port=server.port, **options) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert welcome["type"] == "welcome"
            return 101, b""
    except websockets.InvalidStatus as refused:
        return refused.response.status_code, refused.response.body


async def test_by_default_only_a_page_on_the_requested_host_gets_in(transport: str) -> None:
    async with served(app, transport) as server:
        here = f"127.0.0.1:{server.port}"
        accepted: list[tuple[str | None, str | None]] = [
            (None, None),  # not a browser: not checked
            (f"http://{here}", None),
            (f"https://{here}", None),  # the scheme is not compared (a proxy ended TLS)
            (f"http://App.Example:{server.port}", f"app.example:{server.port}"),
            (f"HTTPS://APP.EXAMPLE:{server.port}", f"app.example:{server.port}"),
            ("https://app.example", "app.example"),  # default ports are no port
            ("https://app.example:443", "app.example"),
            ("http://app.example:80", "app.example"),
            ("https://app.example", "app.example:443"),
            ("http://[::1]:8080", "[::1]:8080"),
        ]
        for origin, host in accepted:
            assert await upgrade(server, origin, host) == (101, b""), (origin, host)
        refused: list[tuple[str, str | None]] = [
            (f"http://127.0.0.1:{server.port + 1}", None),  # another port
            (f"http://localhost:{server.port}", None),  # another name of the same host
            ("https://evil.example", None),
            ("null", None),  # a sandboxed frame or a file: page
            ("not an origin", None),
            (f"http://{here}/path", None),
            ("https://app.example:8443", "app.example"),
            ("http://app.example.evil.example", "app.example"),
        ]
        for origin, host in refused:
            status, body = await upgrade(server, origin, host)
            assert status == 403, (origin, host)
            assert b"--allowed-origin" in body and b"this server's host" in body, body
        # X-Forwarded-Host is set by whoever sends the request: not trusted.
        status, _ = await upgrade(
            server, "https://app.example", None, {"X-Forwarded-Host": "app.example"}
        )
        assert status == 403
        assert server.node.stats.handshake_rejects == {403: len(refused) + 1}


async def test_allowed_origins_are_the_only_ones_then(transport: str) -> None:
    allowed = ["https://App.example/", "http://other.example:8080"]
    async with served(app, transport, allowed_origins=allowed) as server:
        for origin in (
            None,
            "https://app.example",
            "https://app.example:443",
            "http://other.example:8080",
        ):
            assert await upgrade(server, origin) == (101, b""), origin
        for origin in (f"http://127.0.0.1:{server.port}", "http://app.example", "null"):
            status, body = await upgrade(server, origin)
            assert status == 403, origin
            assert b"not in allowed_origins" in body and b"--allowed-origin" in body, body
    async with served(app, transport, allowed_origins=["*"]) as server:
        for origin in ("https://evil.example", "null", f"http://127.0.0.1:{server.port}"):
            assert await upgrade(server, origin) == (101, b""), origin
        assert server.node.stats.handshake_rejects == {}


async def test_a_refused_origin_is_logged_once(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser hides the 403 from the page: the server's log says what happened."""
    async with served(app, transport) as server:
        with caplog.at_level(logging.WARNING, logger="fastcomm.server"):
            for origin in ("https://evil.example", "https://evil.example", "null"):
                assert (await upgrade(server, origin))[0] == 403
        warnings = [r.getMessage() for r in caplog.records if r.name == "fastcomm.server"]
        here = f"127.0.0.1:{server.port}"
        assert warnings == [
            f"refused a WebSocket upgrade from origin 'https://evil.example' to host '{here}': "
            "the page is not on this server's host; "
            "allow it with --allowed-origin ORIGIN (* allows any)",
            f"refused a WebSocket upgrade from origin 'null' to host '{here}': "
            "the page is not on this server's host; "
            "allow it with --allowed-origin ORIGIN (* allows any)",
        ]
        assert all(
            r.levelno == logging.WARNING for r in caplog.records if r.name == "fastcomm.server"
        )
