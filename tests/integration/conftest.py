"""Fixtures: real servers on free ports, real clients."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import fastcomm
from fastcomm.channels.broker import Broker
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.loadgen.target import ChildServer, free_port
from tests.traced import traced
from tests.waiting import eventually

__all__ = [
    "ServerProcess",
    "brokers",
    "eventually",
    "free_port",
    "http_get",
    "running",
    "server_process",
    "status_of",
]


@pytest.fixture(params=["memory", "redis"])
async def brokers(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Broker]]:
    """``make()``: the broker of one more node: one MemoryBroker shared by the nodes, or
    a RedisBroker per node (as separate processes have) on the session's redis-server.
    A test module may name the classes to make in ``BROKER_CLASSES`` (memory, redis)."""
    memory, redis = getattr(request.module, "BROKER_CLASSES", (MemoryBroker, RedisBroker))
    made: list[Broker] = []
    if request.param == "memory":
        shared = memory()
        made.append(shared)

        def make() -> Broker:
            return shared
    else:
        url = request.getfixturevalue("redis_url")

        def make() -> Broker:
            made.append(redis(url))
            return made[-1]

    yield make
    for broker in made:
        await broker.close()


@asynccontextmanager
async def running(
    app: fastcomm.App | None = None, **options: Any
) -> AsyncIterator[fastcomm.Server]:
    """A fastcomm server on a free port for the duration of the block."""
    options.setdefault("port", 0)
    server = fastcomm.Server(app, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def http_get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET on the server port; returns (status, body)."""

    def get() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    return await asyncio.to_thread(get)


def resumable(server: fastcomm.Server) -> int:
    """Sessions of ``server`` that are resumable and not live (its store holds the
    records of live sessions too)."""
    sessions = server.node.sessions
    stored = sessions.stored()
    assert stored is not None
    return stored - len(sessions)


async def status_of(server: fastcomm.Server) -> dict[str, Any]:
    code, body = await http_get(server.port, "/status")
    assert code == 200
    return json.loads(body)  # type: ignore[no-any-return]


class ServerProcess(ChildServer):
    """``python -m fastcomm serve ARGS`` as a subprocess on a free port, started at
    once; ``env`` is added to this process's environment (PYTHONPATH included)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "fastcomm", "serve", *args, "--port", "{port}"]
        super().__init__(
            command,
            name="fastcomm serve",
            env=traced({**os.environ, **(env or {})}),
            start_timeout=15.0,
            stop_timeout=10.0,
        )
        self.start()


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        proc = ServerProcess(*args, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
