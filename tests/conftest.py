"""Fixtures for every test directory: a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redisserver import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; fails (never skips) without redis-server."""
    server = RedisServer.current = RedisServer().start()
    try:
        yield server
    finally:
        RedisServer.current = None
        server.remove()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's redis-server, emptied for this test."""
    if redis_server.process is None:  # a test stopped it
        redis_server.start()
    redis_server.flush()
    return redis_server.url
