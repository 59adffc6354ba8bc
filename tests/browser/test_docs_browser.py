"""docs/BROWSER.md's and docs/AUTH.md's JavaScript, run as written in real
Chromium against a real server, and the demo command.

Blocks are found as tests/integration/docblocks.py says; only ports change.
Each snippet runs as a module script in a page on the server's origin (so
``/fastcomm.js`` and ``/ws`` resolve there). The names a snippet leaves to
the application (``render``, ``resync``, ``getFreshToken``, ``fetchToken``)
are defined on the page first; a snippet that starts from ``Client.connect``
gets the documented ``import`` line before it. AUTH.md's snippet runs against
the JWT server that page starts, its token function returning a token signed
with the page's secret.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

import fastcomm
from fastcomm.loadgen.target import ChildServer, free_port
from tests.browser.test_origins import CONNECT
from tests.integration.conftest import running
from tests.integration.docblocks import (
    DOCS,
    ENV,
    ROOT,
    block,
    commands,
    first,
    port_env,
    split_env,
)
from tests.waiting import eventually

BROWSER, AUTH = DOCS / "BROWSER.md", DOCS / "AUTH.md"
IMPORT = 'import { Client } from "/fastcomm.js";\n'
APPLICATION = """() => {
  window.rendered = [];
  window.tokens = 0;
  window.render = (data) => rendered.push(data);
  window.resync = () => rendered.push("resync");
  window.getFreshToken = window.fetchToken = () => `user${++tokens}`;
}"""


@pytest.fixture
def tour(tmp_path: Path) -> Iterator[ChildServer]:
    """The README's myapp.py (``add`` and a connect hook: user = token), served by
    the command BROWSER.md starts with (its first block)."""
    assert first(BROWSER) == ("serve", block("serve", BROWSER))
    (tmp_path / "myapp.py").write_text(block("tour"))
    [argv] = commands(block("serve", BROWSER), {"8000": "{port}"})
    with ChildServer(argv, name="the tour", env=ENV, cwd=tmp_path, ready="/readyz") as server:
        yield server


@pytest.fixture
def jwt_server(tmp_path: Path) -> Iterator[tuple[ChildServer, str]]:
    """The server docs/AUTH.md starts in its first block, and a token for it."""
    name, text = first(AUTH)
    assert name == "jwt-cli"
    port = free_port()
    [line] = commands(text, {})
    argv, env = split_env(line, port_env(port))
    claims = {"sub": "alice", "aud": "chat", "iss": "https://auth.example"}  # its flags
    token = jwt.encode(claims, env["FASTCOMM_JWT_SECRET"], algorithm="HS256")
    server = ChildServer(argv, name="JWT server", port=port, env=env, cwd=tmp_path, ready="/readyz")
    with server:
        yield server, token


async def run_module(browser: Any, port: int, source: str, setup: str = "") -> Any:
    """Run ``source`` as a module script on the server's origin, after ``setup``
    (a script run first); returns ``window.docResult``, which the source must set
    at its end."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: print("console:", msg.text))
    await page.goto(f"http://127.0.0.1:{port}/healthz")
    await page.evaluate(APPLICATION)
    if setup:
        await page.evaluate(setup)
    await page.add_script_tag(content=source, type="module")

    async def finished() -> Any:
        assert not errors, errors  # the snippet failed: no use waiting
        return await page.evaluate("window.docResult")

    return await eventually(finished, 15, "the snippet to finish")


async def test_the_client_example(browser: Any, tour: ChildServer) -> None:
    source = block("client", BROWSER).replace("8000", str(tour.port))
    source += """
window.docResult = {
  sum, members, epoch, messages: messages.length, rendered, state: client.state,
  offsets: [sub.offset, sub.closed],
};
"""
    result = await run_module(browser, tour.port, source)
    assert result["sum"] == 3
    assert [m["user"] for m in result["members"]] == ["…"]  # the example's token is the user
    assert result["rendered"] == [{"text": "hi"}]
    assert result["state"] == "closed" and result["offsets"] == [1, True]
    assert isinstance(result["epoch"], str) and result["messages"] == 0


async def test_token_as_a_function(browser: Any, tour: ChildServer) -> None:
    source = IMPORT + block("token-function", BROWSER)
    source += "const user = (await client.call({type: 'add', a: 1, b: 1}), client.session);\n"
    source += "await client.close();\nwindow.docResult = {session: user, tokens};\n"
    result = await run_module(browser, tour.port, source)
    assert result["tokens"] == 1 and result["session"]  # asked once, before the attempt


async def test_token_as_a_function_on_the_auth_page(
    browser: Any, jwt_server: tuple[ChildServer, str]
) -> None:
    server, token = jwt_server
    source = IMPORT + block("token-function", AUTH)
    source += "const session = client.session;\n"
    source += "await client.close();\nwindow.docResult = {session, tokens};\n"
    setup = f"() => {{ window.getFreshToken = () => (++window.tokens, {json.dumps(token)}); }}"
    result = await run_module(browser, server.port, source, setup)
    assert result["tokens"] == 1 and result["session"]  # a JWT the server accepted, asked once


async def test_a_page_on_the_allowed_origin(browser: Any, tmp_path: Path) -> None:
    """The listed origin gets in; a page on any other (here: the same port on
    127.0.0.1, another origin than localhost) does not."""
    (tmp_path / "myapp.py").write_text(block("tour"))
    async with running(fastcomm.App(), port=free_port()) as pages:
        [argv] = commands(
            block("allowed-origin", BROWSER), {"8000": "{port}", "8001": str(pages.port)}
        )
        with ChildServer(
            argv, name="fastcomm serve", env=ENV, cwd=tmp_path, ready="/readyz"
        ) as server:
            listed, other = await browser.new_page(), await browser.new_page()
            await listed.goto(f"http://localhost:{pages.port}/healthz")
            await other.goto(f"http://127.0.0.1:{pages.port}/healthz")
            assert await listed.evaluate(CONNECT, [server.port, "alice"]) == "pong"
            assert await other.evaluate(CONNECT, [server.port, "alice"]) == [
                "ConnectionClosed",
                1006,
            ]
            expected = f"origin 'http://127.0.0.1:{pages.port}'"
            await eventually(lambda: expected in server.output(), 5, server.output)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"]


async def test_the_demo_command(tmp_path: Path) -> None:
    command, comment = block("demo", BROWSER).splitlines()
    port = free_port()
    [argv] = commands(command, {})
    with ChildServer(argv, name="fastcomm serve --demo", port=port, env=port_env(port),
                     cwd=ROOT, ready="/readyz") as server:  # fmt: skip
        status, kind = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/demo")
        assert comment.startswith("# logged: ")
        expected = comment.removeprefix("# logged: ").replace("8000", str(port))
        await eventually(lambda: expected in server.output(), 5, server.output)
    assert (status, kind.split(";")[0]) == (200, "text/html")


async def test_the_readme_console_snippet_on_the_demo_page(browser: Any, tmp_path: Path) -> None:
    """README.md's demo command, then its snippet in the console of a demo window."""
    [argv] = commands(block("demo"), {})
    port = free_port()
    with ChildServer(argv, name="fastcomm serve --demo", port=port, env=port_env(port),
                     cwd=tmp_path, ready="/readyz"):  # fmt: skip
        page = await browser.new_page()
        logged: list[Any] = []
        page.on("console", lambda msg: logged.append(msg))
        await page.goto(f"http://127.0.0.1:{port}/demo")
        snippet = block("js-client").replace("8000", str(port))
        await page.evaluate(f"async () => {{\n{snippet}\n}}")  # as the console runs it

        async def publication_logged() -> bool:
            for msg in logged:
                if [await arg.json_value() for arg in msg.args] == [1, {"text": "hi"}]:
                    return True
            return False

        await eventually(publication_logged, 10, lambda: [msg.text for msg in logged])
