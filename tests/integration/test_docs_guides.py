"""docs/CHANNELS.md, docs/AUTH.md and docs/HTTP-API.md's commands and code, run
as written against real servers (blocks found and run as
tests/integration/docblocks.py says: only ports change), and the message
shapes of docs/PROTOCOL.md compared with what a server sends.

HTTP-API.md's request and response bodies are checked by
tests/unit/test_http_api_docs.py; its curl session runs here.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import shlex
import shutil
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets
from websockets.exceptions import InvalidStatus

import fastcomm
from fastcomm.auth import JWT
from fastcomm.loadgen.target import ChildServer, free_port
from tests.integration.conftest import eventually, resumable
from tests.integration.docblocks import (
    DOCS,
    ENV,
    block,
    commands,
    first,
    port_env,
    ported,
    python,
    save,
    split_env,
)

CHANNELS, AUTH, HTTP_API = DOCS / "CHANNELS.md", DOCS / "AUTH.md", DOCS / "HTTP-API.md"
PROTOCOL = DOCS / "PROTOCOL.md"
SECRET = "a long random secret, 32 bytes or more"  # the docs' own


async def recv(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def ask(ws: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Send ``request`` and return the reply with its id (pushes in between are skipped)."""
    await ws.send(json.dumps(request))
    while (reply := await recv(ws)).get("id") != request["id"]:
        pass
    return reply


def served(argv: list[str], env: dict[str, str], cwd: Path, port: int) -> ChildServer:
    return ChildServer(argv, name=" ".join(argv[2:4]), port=port, env=env, cwd=cwd, ready="/readyz")


async def test_chat_in_two_terminals(tmp_path: Path) -> None:
    name, text = first(CHANNELS)
    assert name == "chat"
    serve, websocat, subscribe, publish = text.splitlines()
    port = free_port()
    [argv] = commands(serve, {"8000": str(port)})
    program, url = shlex.split(websocat, comments=True)
    assert program == "websocat"
    with served(argv, ENV, tmp_path, port):
        url = url.replace("8000", str(port))
        async with websockets.connect(url) as one, websockets.connect(url) as two:
            for ws in (one, two):
                assert (await recv(ws))["type"] == "welcome"
                await ws.send(subscribe)
                assert (await recv(ws))["type"] == "subscribed"
            await one.send(publish)
            got = [await recv(one), await recv(one), await recv(two)]
    message = {"type": "message", "channel": "chat", "offset": 1, "data": {"text": "hello"}}
    for reply in (got[0], got[2]):
        assert {k: v for k, v in reply.items() if k != "epoch"} == message
    assert got[1] == {"type": "published", "id": 2, "channel": "chat", "offset": 1}


async def test_namespaces_file(tmp_path: Path) -> None:
    assert save(block("namespaces", CHANNELS), tmp_path) == "fastcomm.toml"
    port = free_port()
    [argv] = commands(block("namespaces-serve", CHANNELS), {})
    with served(argv, port_env(port), tmp_path, port):
        url = f"ws://127.0.0.1:{port}/ws"
        async with websockets.connect(url) as one, websockets.connect(url) as two:
            await recv(one), await recv(two)
            await ask(one, {"type": "subscribe", "id": 1, "channel": "chat:a"})
            await two.send(json.dumps({"type": "subscribe", "id": 1, "channel": "chat:a"}))
            while (event := await recv(one))["type"] != "join":  # join_leave = true
                pass
            assert event["channel"] == "chat:a"
            await ask(one, {"type": "subscribe", "id": 2, "channel": "ticker:x"})
            refused = await ask(one, {"type": "publish", "id": 3, "channel": "ticker:x", "data": 1})
            assert refused["code"] == "forbidden"  # client_publish = false
            assert (await ask(one, {"type": "presence", "id": 4, "channel": "ticker:x"}))[
                "code"
            ] == "forbidden"  # presence = false
            await ask(one, {"type": "subscribe", "id": 5, "channel": "news"})
            for i in range(60):
                await ask(one, {"type": "publish", "id": 6 + i, "channel": "news", "data": i})
            page = await ask(one, {"type": "history", "id": 99, "channel": "news"})
    assert [m["data"] for m in page["messages"]] == list(range(10, 60))  # history_size = 50


class Notice(fastcomm.Message, tag="notice"):
    text: str


async def test_server_side_api() -> None:
    app = fastcomm.App()
    app.on_connect(lambda request: fastcomm.Identity(user=request.token))
    source = "async def snippet(app, Notice, session_id):\n"
    source += textwrap.indent(block("server-api", CHANNELS), "    ")
    source += "    return position, members\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "CHANNELS.md", "exec"), namespace)
    async with (
        fastcomm.Server(app, port=0) as server,
        websockets.connect(f"ws://127.0.0.1:{server.port}/ws?token=alice") as ws,
    ):
        session = (await recv(ws))["session"]
        await ask(ws, {"type": "subscribe", "id": 1, "channel": "chat:lobby"})
        position, members = await namespace["snippet"](app, Notice, session)
        got = [await recv(ws), await recv(ws)]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv(ws)
    assert position.offset == 1 and got[0]["data"] == {"text": "maintenance"}
    assert got[1] == {"type": "notice", "text": "hi"}
    assert [(m.session, m.user) for m in members] == [(session, "alice")]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003


def test_python_client_snippet_is_an_api_illustration() -> None:
    """Its loops wait for publications forever, so it is not run: it must parse,
    and its options are the ones ``Client.connect`` takes."""
    text = block("python-client", CHANNELS)
    tree = ast.parse("async def illustration():\n" + textwrap.indent(text, "    "))
    [call] = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == (
        "fastcomm.Client.connect"
    )]  # fmt: skip
    names = {keyword.arg: None for keyword in call.keywords}
    inspect.signature(fastcomm.Client.connect).bind("ws://x", **names)


def token(claims: dict[str, Any], key: str = SECRET) -> str:
    return jwt.encode({"iat": int(time.time()), **claims}, key, algorithm="HS256")


async def refusal(url: str, **options: Any) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, **options):
            pass
    response = refused.value.response
    return response.status_code, bytes(response.body or b"").decode().strip()


async def run_the_client(where: Path, port: int) -> None:
    """The page's client.py, run as the page says, against the server on ``port``."""
    name = save(block("jwt-client", AUTH).replace("8000", str(port)), where)
    result = await asyncio.to_thread(python, name, where)
    assert result.returncode == 0, result.stderr
    connected, refused = result.stdout.splitlines()
    assert connected.startswith("connected, session ")
    assert refused == "refused: 401 invalid token signature"


async def test_jwt_on_the_command_line_first(tmp_path: Path) -> None:
    name, text = first(AUTH)
    assert name == "jwt-cli"
    port = free_port()
    [line] = commands(text, {})
    argv, env = split_env(line, port_env(port))
    with served(argv, env, tmp_path, port) as server:
        await run_the_client(tmp_path, port)
        url = f"ws://127.0.0.1:{port}/ws?token="
        claims = {"sub": "bob", "iss": "https://auth.example"}
        assert await refusal(url + token({**claims, "aud": "other"})) == (
            401, "401 invalid token audience",
        )  # fmt: skip
        async with websockets.connect(url + token({**claims, "aud": "chat"})) as ws:
            await recv(ws)
            await ask(ws, {"type": "subscribe", "id": 1, "channel": "room"})
            members = await ask(ws, {"type": "presence", "id": 2, "channel": "room"})
    assert [m["user"] for m in members["members"]] == ["bob"]
    assert "InsecureKeyLengthWarning" not in server.output()  # the documented secret is long enough


async def test_jwt_in_code(tmp_path: Path) -> None:
    assert save(block("jwt-app", AUTH), tmp_path) == "myapp.py"
    port = free_port()
    [argv] = commands(block("jwt-serve", AUTH), {})
    claims = json.loads(block("channels-claim", AUTH))
    good = token({**claims, "aud": "chat", "iss": "https://auth.example"})
    with served(argv, port_env(port), tmp_path, port) as server:
        await run_the_client(tmp_path, port)
        url = f"ws://127.0.0.1:{port}/ws"
        assert await refusal(url) == (401, "401 missing token")
        bearer = {"Authorization": f"Bearer {good}"}
        async with websockets.connect(url, additional_headers=bearer) as ws:
            await recv(ws)
            for i, channel in enumerate(["chat:lobby", "user#alice"], 1):
                assert (await ask(ws, {"type": "subscribe", "id": i, "channel": channel}))[
                    "type"
                ] == "subscribed"
            members = await ask(ws, {"type": "presence", "id": 3, "channel": "chat:lobby"})
            elsewhere = await ask(ws, {"type": "subscribe", "id": 4, "channel": "news"})
    assert [m["user"] for m in members["members"]] == ["alice"]
    assert "InsecureKeyLengthWarning" not in server.output()
    assert members["members"][0]["meta"]["channels"] == claims["channels"]
    assert elsewhere["code"] == "forbidden"  # not in the channels claim


async def test_refreshing_the_token_of_the_python_client() -> None:
    app = fastcomm.App()
    JWT(SECRET).install(app)
    new_token = token({"sub": "carol", "exp": int(time.time()) + 60})
    namespace = {"new_token": new_token}
    async with fastcomm.Server(app, port=0) as server:
        expires = int(time.time()) + 1
        first = token({"sub": "carol", "exp": expires})
        headers = {"Authorization": f"Bearer {first}"}
        client = await fastcomm.Client.connect(server.url, headers=headers, backoff_max=0.2)
        async with client:
            namespace["client"] = client
            exec(block("new-token", AUTH), namespace)
            await eventually(lambda: time.time() > expires + 0.1, 5, "the first token expired")
            await app.disconnect(client.session, code=1000)
            await eventually(lambda: client.reconnects, 10, "the client reconnected")
            assert client.reconnects == 1 and client.connected
            assert client.welcome.resumed  # the same user: the session came back


def test_curl_session_against_the_server_the_page_starts(tmp_path: Path) -> None:
    """The page's first block starts the server; its curl session runs in ``sh``."""
    name, serve = first(HTTP_API)
    assert name == "api-serve"
    port, api_port = free_port(), free_port()
    ports = {"8001": str(api_port)}
    [line] = commands(serve, ports)
    argv, env = split_env(line, port_env(port))
    session = ported(block("curl", HTTP_API), ports)
    curls = [line for line in session.splitlines() if line.startswith("curl ")]
    assert shutil.which("curl"), "the curl session needs curl"
    with served(argv, env, tmp_path, port):
        result = subprocess.run(
            ["sh", "-e"], input=session, capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 0, result.stderr
    answers = json_documents(result.stdout)
    assert len(answers) == len(curls) == 6, result.stdout
    for line, answer in zip(curls, answers, strict=True):
        assert "result" in answer or "openapi" in answer, (line, answer)
    assert answers[0]["result"]["offset"] == 1  # publish
    assert [p["data"] for p in answers[1]["result"]["publications"]] == [{"text": "hi"}]


def json_documents(text: str) -> list[Any]:
    """The JSON documents of ``text``, one after the other (curl prints no newline)."""
    decoder, found, rest = json.JSONDecoder(), [], text.strip()
    while rest:
        document, end = decoder.raw_decode(rest)
        found.append(document)
        rest = rest[end:].lstrip()
    return found


def shape(name: str) -> dict[str, Any]:
    """A PROTOCOL.md message shape; its placeholders (``<int|null>``, ``…``) read as null."""
    text = block(name, PROTOCOL).replace("<int|null>", "null").replace("…", "null")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


async def test_protocol_shapes_are_what_the_server_sends() -> None:
    """The shapes are not meant to be copied; their fields and fixed values must be real."""
    async with fastcomm.Server(fastcomm.App(), port=0) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with websockets.connect(url) as ws:
            hello = await recv(ws)
            error = await ask(ws, {"type": "no such type", "id": 1})
        await eventually(lambda: resumable(server) == 1)
        async with websockets.connect(url) as ws:
            await recv(ws)
            resumed = await ask(ws, {"type": "resume", "id": 1, "token": hello["resume_token"]})
    documented = shape("resumed-shape")
    assert resumed.keys() == documented.keys()
    assert {k: resumed[k] for k in ("type", "id", "resumed")} == {
        k: documented[k] for k in ("type", "id", "resumed")
    }
    assert resumed["session"] == hello["session"]
    documented = shape("welcome-shape")
    assert hello.keys() == documented.keys()
    assert {
        k: hello[k] for k in ("type", "resumed", "heartbeat", "max_message_size", "protocol")
    } == {
        k: documented[k] for k in ("type", "resumed", "heartbeat", "max_message_size", "protocol")
    }
    assert error.keys() == shape("error-shape").keys() and error["code"] == "unknown_type"
