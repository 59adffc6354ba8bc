"""The tests' redis-server: real, on a free port, and never silently absent."""

from __future__ import annotations

import pytest

from tests.redisserver import PACKAGE, RedisServer


def test_without_redis_server_on_path_the_fixture_fails_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match=f"install Debian's {PACKAGE} package"):
        RedisServer()


def test_the_session_server_answers_and_restarts_on_its_port(
    redis_url: str, redis_server: RedisServer
) -> None:
    assert redis_url == redis_server.url
    assert redis_server.command("SET", "k", "v") == b"+OK"
    port = redis_server.port
    redis_server.kill()
    assert redis_server.command("PING") is None
    redis_server.start()
    assert (redis_server.port, redis_server.command("PING")) == (port, b"+PONG")
    assert redis_server.command("GET", "k") == b"$-1"  # no persistence: the data is gone
