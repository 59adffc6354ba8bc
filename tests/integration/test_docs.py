"""The README's commands and code, run as written against real servers.

Blocks are found and run as tests/integration/docblocks.py says: only the
ports change. The HTTP API example names no main port, so that server gets
its free one from ``FASTCOMM_PORT``. websocat may be missing: its session is
replayed line by line with the ``websockets`` library instead, and curl (if
missing) with urllib.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from fastcomm.loadgen.target import ChildServer, free_port
from tests.integration.docblocks import ENV, ROOT, block, commands, python, save

README = ROOT / "README.md"


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ChildServer]]:
    """The tour's myapp.py in a directory, served by the README's own command."""
    where = tmp_path_factory.mktemp("tour")
    (where / "myapp.py").write_text(block("tour"))
    [argv] = commands(block("serve"), {"8000": "{port}"})
    server = ChildServer(argv, name="the tour", env=ENV, cwd=where, ready="/healthz")
    server.start()
    yield where, server
    server.stop()


def test_python_client_script(tour: tuple[Path, ChildServer]) -> None:
    where, server = tour
    name = save(block("client").replace("8000", str(server.port)), where)
    result = python(name, where)
    assert result.returncode == 0, result.stderr
    three, publication = result.stdout.splitlines()
    assert three == "3"
    assert publication.endswith(" {'text': 'hi'}")  # the offset: 1, or 2 after the websocat test


def test_embedded_server_script(tour: tuple[Path, ChildServer]) -> None:
    where, _ = tour
    result = python(save(block("embedded"), where), where)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/ws\n", result.stdout), result.stdout


async def test_websocat_session(tour: tuple[Path, ChildServer]) -> None:
    _, server = tour
    text = block("websocat").replace("8000", str(server.port))
    command, *messages = text.splitlines()
    program, url = shlex.split(command)
    assert program == "websocat"
    async with websockets.connect(url) as ws:
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
        for line in messages:
            await ws.send(line)
        while len(replies) < 1 + len(messages) + 1:  # welcome, replies, the message
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    assert replies[0]["type"] == "welcome"
    by_id = {r["id"]: r for r in replies if "id" in r}
    assert by_id[1]["type"] == "pong"
    assert by_id[2]["type"] == "subscribed"
    assert by_id.keys() == {1, 2, 3} and "error" not in {r["type"] for r in replies}
    assert by_id[3]["type"] == "published"
    [pub] = [r for r in replies if r["type"] == "message"]
    assert (pub["channel"], pub["data"]) == ("chat:lobby", {"text": "hi"})


def test_bench_example(tour: tuple[Path, ChildServer]) -> None:
    where, _ = tour
    [argv] = commands(block("bench"), {})
    result = subprocess.run(
        argv, cwd=where, env=ENV, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_http_api_example(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    serve, curl = commands(block("http-api"), {"8001": str(api_port)})
    env = {**ENV, "FASTCOMM_PORT": str(port)}
    with ChildServer(serve, name="the API example", port=port, env=env, ready="/healthz"):
        assert curl[:2] == ["curl", "-s"]
        if shutil.which("curl"):
            result = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=False)
            assert result.returncode == 0, result.stderr
            answer = result.stdout
        else:  # the same request: -H "Name: value" -d BODY URL
            name, _, value = curl[curl.index("-H") + 1].partition(": ")
            body = curl[curl.index("-d") + 1].encode()
            request = urllib.request.Request(curl[-1], data=body, headers={name: value})
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = response.read().decode()
    assert "result" in json.loads(answer)
