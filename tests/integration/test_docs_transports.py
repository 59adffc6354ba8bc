"""docs/TRANSPORTS.md's commands and code, run as written against real servers.

Blocks are found and run as tests/integration/docblocks.py says: only ports
change. The commands run in a directory standing in for the repository root
(a copy of ``examples/asgi_app.py`` in ``examples/``), so that the files they
write (``fastcomm.toml``, ``cert.pem``, ``main.py``) stay out of the checkout.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from fastcomm.loadgen.target import ChildServer, free_port
from tests.integration.docblocks import (
    DOCS,
    ENV,
    ROOT,
    block,
    commands,
    first,
    port_env,
    python,
    save,
    split_env,
    welcome,
)
from tests.waiting import eventually

DOC = DOCS / "TRANSPORTS.md"
COMMANDS = commands(block("transport-commands", DOC), {"8000": "{port}"})
# uvicorn as `pip install uvicorn` leaves it: no WebSocket library (nor httptools).
PLAIN_UVICORN = (
    "import sys; sys.modules.update(websockets=None, wsproto=None, httptools=None); "
    "from uvicorn.main import main; main()"
)


@pytest.fixture
def where(tmp_path: Path) -> Path:
    """A directory standing in for the repository root."""
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "asgi_app.py", tmp_path / "examples" / "asgi_app.py")
    return tmp_path


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


async def add_one_and_two(url: str) -> object:
    async with websockets.connect(url) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
        await ws.send('{"type":"add","id":7,"a":1,"b":2}')
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


def test_four_commands_are_documented_first() -> None:
    assert first(DOC)[0] == "transport-commands"
    assert [argv[2] for argv in COMMANDS] == ["fastcomm", "fastcomm", "uvicorn", "granian"]


@pytest.mark.parametrize("argv", COMMANDS, ids=["picows", "fastcomm-granian", "uvicorn", "granian"])
async def test_each_command_serves_the_app_and_its_endpoints(argv: list[str], where: Path) -> None:
    with ChildServer(argv, name=" ".join(argv[2:4]), env=ENV, cwd=where, ready="/healthz") as srv:
        http = f"http://127.0.0.1:{srv.port}"
        for path in ("/healthz", "/readyz", "/status", "/metrics"):
            status, _ = await asyncio.to_thread(get, http + path)
            assert status == 200, path
        reply = await add_one_and_two(f"ws://127.0.0.1:{srv.port}/ws")
    assert reply == {"type": "result", "id": 7, "data": 3}


async def test_a_plain_uvicorn_answers_upgrades_426_and_only_warns(where: Path) -> None:
    """What the page says of ``pip install uvicorn`` without the asgi extra."""
    [argv] = [argv for argv in COMMANDS if argv[2] == "uvicorn"]
    argv = [sys.executable, "-c", PLAIN_UVICORN, *argv[3:]]
    with ChildServer(argv, name="plain uvicorn", env=ENV, cwd=where, ready="/healthz") as srv:
        with pytest.raises(InvalidStatus) as refused:
            await welcome(f"ws://127.0.0.1:{srv.port}/ws")
        response = refused.value.response
        assert (response.status_code, bytes(response.body or b"")) == (
            426, b"426 upgrade required\n",
        )  # fmt: skip
        warning = "WARNING:  No supported WebSocket library detected"
        await eventually(lambda: warning in srv.output(), 10, srv.output)
    assert "ERROR" not in srv.output()


@pytest.mark.parametrize("snippet", ["fastapi-mount", "fastapi-asgiapp"])
async def test_fastapi_mount_under_uvicorn(snippet: str, where: Path) -> None:
    source = block(snippet, DOC)
    name, _, _ = source.partition("\n")
    assert name == "# main.py"
    (where / "main.py").write_text(source)
    [argv] = commands(block("uvicorn-main", DOC), {})
    port = free_port()
    server = ChildServer(
        argv, name="uvicorn main:api", port=port, env=port_env(port), cwd=where,
        ready="/realtime/healthz",
    )  # fmt: skip
    with server:
        status, body = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/realtime/healthz")
        assert (status, body.strip()) == (200, "ok")
        hello = await welcome(f"ws://127.0.0.1:{port}/realtime/ws")
        assert hello["protocol"] == "fastcomm.v1"
        with pytest.raises(InvalidStatus) as refused:  # the endpoints moved below the mount
            await welcome(f"ws://127.0.0.1:{port}/ws")
        assert refused.value.response.status_code == 403  # FastAPI's answer: no such route
        async with websockets.connect(f"ws://127.0.0.1:{port}/realtime/ws") as ws:
            await ws.recv()
            await asyncio.to_thread(server.stop)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
    # uvicorn closes WebSockets itself (1012) before the lifespan shutdown, as the doc says
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012


async def refused_origin(url: str) -> int:
    """The HTTP status of an upgrade from a page on another origin."""
    with pytest.raises(InvalidStatus) as refused:
        await welcome(url, origin="https://other.example")
    return refused.value.response.status_code


@pytest.mark.parametrize("line", [0, 1], ids=["uvicorn-variables", "granian-config-file"])
async def test_settings_under_an_asgi_server(line: int, where: Path) -> None:
    toml = block("asgi-settings-file", DOC)
    assert toml.startswith("# fastcomm.toml\n")
    (where / "fastcomm.toml").write_text(toml)
    port = free_port()
    argv, env = split_env(commands(block("asgi-settings", DOC), {})[line], port_env(port))
    with ChildServer(argv, name=argv[2], port=port, env=env, cwd=where, ready="/healthz"):
        url = f"ws://127.0.0.1:{port}/ws"
        await welcome(url, origin="https://app.example")
        assert await refused_origin(url) == 403


async def test_tls_certificate_server_and_client(where: Path) -> None:
    [openssl] = commands(block("tls-certificate", DOC), {})
    made = subprocess.run(openssl, cwd=where, capture_output=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr.decode()
    port = free_port()
    [argv] = commands(block("tls-serve", DOC), {"8443": str(port)})
    with ChildServer(argv, name="fastcomm serve (TLS)", port=port, env=ENV, cwd=where) as srv:
        name = save(block("tls-client", DOC).replace("8443", str(srv.port)), where)
        result = await asyncio.to_thread(python, name, where)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["fastcomm.v1", f"wss://127.0.0.1:{port}/ws"]
        # the certificate really is checked: a client trusting nothing else refuses it
        with pytest.raises(ssl.SSLCertVerificationError):
            await welcome(f"wss://127.0.0.1:{port}/ws", ssl=ssl.create_default_context())
