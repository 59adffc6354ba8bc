"""JWT authentication (fastcomm.auth) against real servers, with tokens made by PyJWT."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets
from websockets.exceptions import InvalidStatus

import fastcomm
from fastcomm.auth import JWT
from tests.integration.conftest import ServerProcess, running

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class WhoAmI(fastcomm.Message, tag="whoami"):
    pass


def make_app() -> fastcomm.App:
    app = fastcomm.App()

    @app.on(WhoAmI)
    def whoami(msg: WhoAmI, conn: fastcomm.Connection) -> Any:
        return {"user": conn.user, "meta": conn.meta}

    JWT(SECRET, audience="fastcomm-tests", issuer="tests").install(app)
    return app


def token(key: str = SECRET, **claims: Any) -> str:
    base: dict[str, Any] = {
        "sub": "alice",
        "aud": "fastcomm-tests",
        "iss": "tests",
        "exp": int(time.time()) + 60,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm="HS256")


async def first_message(url: str, **kwargs: Any) -> dict[str, Any]:
    async with websockets.connect(url, **kwargs) as ws:
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def refused_status(url: str, **kwargs: Any) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, **kwargs):
            pass
    response = refused.value.response
    return response.status_code, response.body or b""


async def test_valid_token_gives_that_user_and_claims() -> None:
    async with running(make_app()) as server:
        tok = token(channels=["chat:*"], name="Alice")
        client = await fastcomm.Client.connect(server.url, token=tok)
        async with client:
            assert client.welcome is not None and client.welcome.resumed is False
            who = await client.call(WhoAmI())
            assert who["user"] == "alice"
            assert who["meta"]["channels"] == ["chat:*"]
            assert who["meta"]["name"] == "Alice"
        # The query parameter works too (browsers cannot set headers).
        welcome = await first_message(f"{server.url}?token={tok}")
        assert welcome["type"] == "welcome"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 5), b"token expired"),
        (lambda: token(key="another-secret-that-is-also-long-enough"), b"invalid token signature"),
        (lambda: token(aud="someone-else"), b"invalid token audience"),
        (lambda: token(iss="elsewhere"), b"invalid token issuer"),
        (lambda: token(sub=None), b'token lacks the required claim "sub"'),
        (lambda: token(aud=None), b'token lacks the required claim "aud"'),
        (lambda: token(iss=None), b'token lacks the required claim "iss"'),
        (lambda: "not.a.jwt", b"invalid token"),
    ],
)
async def test_bad_tokens_get_401_before_the_upgrade(
    make: Callable[[], str], reason: bytes
) -> None:
    async with running(make_app()) as server:
        status, body = await refused_status(
            server.url, additional_headers={"Authorization": f"Bearer {make()}"}
        )
        assert status == 401
        assert reason in body
        assert SECRET.encode() not in body
        assert server.node.stats.handshake_rejects[401] == 1


async def test_our_client_names_the_status_and_the_reason_once() -> None:
    async with running(make_app()) as server:
        with pytest.raises(fastcomm.HandshakeFailed) as refused:
            await fastcomm.Client.connect(server.url, token=token(exp=int(time.time()) - 5))
        assert (refused.value.status, refused.value.reason) == (401, "token expired")
        assert str(refused.value) == "WebSocket upgrade refused: 401 token expired"
        async with await fastcomm.Client.connect(server.url, token=token(channels=[])) as client:
            with pytest.raises(fastcomm.RequestFailed) as forbidden:
                await client.subscribe("admin")
        assert str(forbidden.value) == "forbidden: not allowed to subscribe to this channel"


async def test_missing_token_gets_401() -> None:
    async with running(make_app()) as server:
        status, body = await refused_status(server.url)
        assert (status, b"missing token" in body) == (401, True)


async def test_channels_claim_limits_subscriptions() -> None:
    async with running(make_app()) as server:
        limited = token(channels=["chat:*", "news"])
        async with await fastcomm.Client.connect(server.url, token=limited) as client:
            await client.subscribe("chat:lobby")
            await client.subscribe("news")
            with pytest.raises(fastcomm.RequestFailed) as refused:
                await client.subscribe("admin")
            assert refused.value.code == "forbidden"
            with pytest.raises(fastcomm.RequestFailed) as refused:
                await client.subscribe("newsroom")
            assert refused.value.code == "forbidden"
        async with await fastcomm.Client.connect(server.url, token=token()) as client:
            await client.subscribe("admin")  # no claim: every channel


async def test_a_new_token_resumes_the_same_session() -> None:
    async with running(make_app()) as server:
        async with await fastcomm.Client.connect(server.url, token=token()) as client:
            assert client.welcome is not None
            resume = client.welcome.resume_token
            session = client.welcome.session
        fresh = token(exp=int(time.time()) + 3600)
        url = f"{server.url}?resume={resume}"
        welcome = await first_message(url, additional_headers={"Authorization": f"Bearer {fresh}"})
        assert (welcome["resumed"], welcome["session"]) == (True, session)


def test_install_refuses_an_app_with_a_connect_hook() -> None:
    app = fastcomm.App()
    app.on_connect(lambda request: None)
    with pytest.raises(ValueError, match="already has a connect hook"):
        JWT(SECRET).install(app)
    with pytest.raises(ValueError, match="none"):
        JWT(SECRET, algorithms=("none",))
    assert SECRET not in repr(JWT(SECRET))


async def test_serve_jwt_secret_subprocess() -> None:
    server = ServerProcess("--jwt-secret", SECRET, "--log-level", "debug")
    try:
        good = jwt.encode({"sub": "bob", "channels": ["chat:*"]}, SECRET, algorithm="HS256")
        async with await fastcomm.Client.connect(server.url, token=good) as client:
            await client.subscribe("chat:x")
            with pytest.raises(fastcomm.RequestFailed) as refused:
                await client.subscribe("other")
            assert refused.value.code == "forbidden"
        status, _ = await refused_status(server.url)
        assert status == 401
        bad = jwt.encode(
            {"sub": "bob"}, "wrong-secret-wrong-secret-wrong-secret", algorithm="HS256"
        )
        status, _ = await refused_status(f"{server.url}?token={bad}")
        assert status == 401
    finally:
        server.stop()
        log = server.output()
    assert SECRET not in log


@pytest.mark.parametrize("spec", ["file", "none"])
async def test_serve_jwt_secret_on_granian_guards_every_app(tmp_path: Path, spec: str) -> None:
    # A file app is loaded anew in granian's worker; without APP the worker's default App
    # is served: the JWT check must be installed on both.
    app_file = tmp_path / "plain_app.py"
    app_file.write_text("import fastcomm\napp = fastcomm.App()\n")
    app = (f"{app_file}:app",) if spec == "file" else ()
    server = ServerProcess("--transport", "granian", *app, "--jwt-secret", SECRET)
    try:
        status, body = await refused_status(server.url)
        assert (status, body) == (401, b"401 missing token\n")
        good = jwt.encode({"sub": "bob"}, SECRET, algorithm="HS256")
        assert (await first_message(f"{server.url}?token={good}"))["type"] == "welcome"
    finally:
        server.stop()


def test_serve_jwt_secret_with_an_app_connect_hook_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "hooked.py").write_text(
        "import fastcomm\napp = fastcomm.App()\n"
        "@app.on_connect\ndef hook(request):\n    return None\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "fastcomm", "serve", "hooked.py:app", "--jwt-secret", SECRET],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastcomm: error: ")
    assert "connect hook" in lines[0]
    assert SECRET not in result.stderr
