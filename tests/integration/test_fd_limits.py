"""The file descriptor limit against ``max_connections``: ``fastcomm serve`` started
under a lowered ``RLIMIT_NOFILE`` (set in the child before fastcomm runs), and the
soft limit raised toward the hard one."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import websockets

from fastcomm.config import build_config
from fastcomm.loadgen.target import ChildServer
from fastcomm.node.limits import connection_capacity
from tests.traced import traced

# The soft and hard limits come first on the command line, then fastcomm's arguments.
LIMITED = (
    "import resource, runpy, sys\n"
    "soft, hard = int(sys.argv.pop(1)), int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
    "runpy.run_module('fastcomm', run_name='__main__', alter_sys=True)\n"
)
PENDING = 16
RESERVE = 64  # fastcomm.node.limits.FD_RESERVE


@contextmanager
def limited_server(soft: int, hard: int, max_connections: int) -> Iterator[ChildServer]:
    command = [
        sys.executable, "-c", LIMITED, str(soft), str(hard), "serve", "--port", "{port}",
        "--max-connections", str(max_connections),
        "--max-pending-handshakes", str(PENDING),
    ]  # fmt: skip
    server = ChildServer(command, env=traced(os.environ), start_timeout=15.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_low_soft_limit_is_raised_to_what_max_connections_needs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # In this process: ``fastcomm serve`` imports granian, which raises the soft limit
    # to the hard one by itself before fastcomm looks.
    config = build_config({"max_connections": 1000, "max_pending_handshakes": PENDING}, env={})
    need = 1000 + PENDING + RESERVE
    original = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, hard = original
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.fail(f"this test needs a hard RLIMIT_NOFILE of at least {need}")
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(need - 1, in_use + 100), hard))
    try:
        with caplog.at_level(logging.INFO, logger="fastcomm.server"):
            assert connection_capacity(config) == 1000
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (need, hard)
        assert f"file descriptor limit raised to {need}" in caplog.text
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, original)


async def test_a_hard_limit_too_low_lowers_max_connections_and_the_rest_get_503() -> None:
    hard = 100
    capacity = hard - PENDING - RESERVE  # 20
    with limited_server(soft=hard, hard=hard, max_connections=1000) as server:
        line = f"max_connections lowered from 1000 to {capacity}: the file descriptor limit is"
        assert line in server.output()
        assert re.search(r"ulimit -n 1080\b", server.output())
        clients = [await websockets.connect(server.url) for _ in range(capacity)]
        try:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(server.url):
                    pass
            assert refused.value.response.status_code == 503
            assert b"server is full" in (refused.value.response.body or b"")
        finally:
            await asyncio.gather(*(client.close() for client in clients))
