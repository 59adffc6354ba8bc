"""JWT authentication at its edges, against real servers: subjects, the claims kept in
``meta``, the ``channels`` claim in its other shapes, an app's own subscribe hook next
to the token's, and the configuration entry points."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

import fastcomm
from fastcomm.auth import JWT, configure, from_config
from fastcomm.config import build_config
from fastcomm.errors import ConfigError
from tests.integration.conftest import running
from tests.integration.test_jwt import WhoAmI, refused_status

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def token(**claims: Any) -> str:
    return jwt.encode({"sub": "alice", **claims}, SECRET, algorithm="HS256")


def whoami_app(auth: JWT) -> fastcomm.App:
    app = fastcomm.App()

    @app.on(WhoAmI)
    def whoami(msg: WhoAmI, conn: fastcomm.Connection) -> Any:
        return {"user": conn.user, "meta": conn.meta}

    auth.install(app)
    return app


async def forbidden(client: fastcomm.Client, channel: str) -> bool:
    try:
        await client.subscribe(channel)
    except fastcomm.RequestFailed as refused:
        return refused.code == "forbidden"
    return False


async def test_an_empty_subject_is_refused() -> None:
    async with running(whoami_app(JWT(SECRET))) as server:
        status, body = await refused_status(f"{server.url}?token={token(sub='')}")
        assert (status, bytes(body)) == (401, b"401 token has no subject\n")


async def test_meta_claims_keeps_only_the_named_claims_and_the_channels_claim() -> None:
    auth = JWT(SECRET, meta_claims=("name",))
    async with running(whoami_app(auth)) as server:
        tok = token(name="Alice", email="alice@example.com", channels=["chat:*"])
        async with await fastcomm.Client.connect(server.url, token=tok) as client:
            who = await client.call(WhoAmI())
            assert who == {"user": "alice", "meta": {"name": "Alice", "channels": ["chat:*"]}}
            await client.subscribe("chat:lobby")  # the channels claim still applies
            assert await forbidden(client, "admin")


async def test_the_channels_claim_may_be_one_pattern_and_a_malformed_one_allows_nothing() -> None:
    async with running(whoami_app(JWT(SECRET))) as server:
        one = token(channels="chat:*")
        async with await fastcomm.Client.connect(server.url, token=one) as client:
            await client.subscribe("chat:lobby")
            assert await forbidden(client, "news")
        for malformed in ({"chat:*": True}, 7):
            tok = token(channels=malformed)
            async with await fastcomm.Client.connect(server.url, token=tok) as client:
                assert await forbidden(client, "chat:lobby")


async def test_the_apps_own_subscribe_hook_runs_after_the_tokens_check() -> None:
    app = fastcomm.App()
    asked: list[str] = []

    @app.authorize_subscribe
    async def not_on_weekends(conn: fastcomm.Connection, channel: str) -> bool:
        asked.append(channel)
        return channel != "chat:weekend"

    JWT(SECRET).install(app)
    async with running(app) as server:
        tok = token(channels=["chat:*"])
        async with await fastcomm.Client.connect(server.url, token=tok) as client:
            await client.subscribe("chat:lobby")
            assert await forbidden(client, "chat:weekend")  # the app's hook says no
            assert await forbidden(client, "news")  # the token says no: the hook is not asked
        assert asked == ["chat:lobby", "chat:weekend"]


async def test_configure_installs_jwt_from_the_settings_on_a_new_app() -> None:
    config = build_config({"jwt_secret": SECRET, "jwt_audience": "chat"}, env={})
    app = configure(None, config)
    assert app is not None and isinstance(app.connect_hook, JWT)
    async with running(app) as server:
        status, body = await refused_status(f"{server.url}?token={token()}")
        assert (status, bytes(body)) == (401, b'401 token lacks the required claim "aud"\n')
        async with await fastcomm.Client.connect(server.url, token=token(aud="chat")) as client:
            assert client.welcome is not None


def test_configuration_mistakes_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        JWT("")
    with pytest.raises(ValueError, match="jwt_secret is not set"):
        from_config(build_config({}, env={}))
    hooked = fastcomm.App()
    hooked.on_connect(lambda request: None)
    with pytest.raises(ConfigError, match="own connect hook"):
        configure(hooked, build_config({"jwt_secret": SECRET}, env={}))
    plain = fastcomm.App()
    assert configure(plain, build_config({}, env={})) is plain  # no secret: unchanged
    with pytest.raises(ValueError, match=r"unknown JWT algorithm 'HS257' \(did you mean HS256"):
        JWT(SECRET, algorithms=("HS257",))
    if jwt.algorithms.has_crypto:  # RS* verify with the cryptography package only
        assert JWT(SECRET, algorithms=("RS256",)).algorithms == ("RS256",)
    else:
        with pytest.raises(ValueError, match="RS256 needs the cryptography package"):
            JWT(SECRET, algorithms=("RS256",))
