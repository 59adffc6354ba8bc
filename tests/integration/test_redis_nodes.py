"""Separate ``fastcomm serve --broker redis://...`` processes sharing one redis-server:
publications from either reach subscribers of both in offset order, history and
presence read the same from both; a client whose process is SIGKILLed resumes on
another; an unreachable Redis at start is one line and exit status 2, or a wait with
``--broker-wait``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable

import msgspec
import pytest
import redis

import fastcomm
from fastcomm.loadgen.target import ChildServer, free_port
from fastcomm.sessions.record import SessionRecord
from tests.integration.balancer import Balancer
from tests.integration.conftest import ServerProcess
from tests.integration.docblocks import DOCS, ENV, block, commands
from tests.integration.test_channels import Peer, offsets
from tests.integration.test_client_channels import FAST
from tests.integration.test_http_api_server import KEY, api
from tests.redisserver import RedisServer
from tests.traced import traced
from tests.waiting import eventually

pytestmark = pytest.mark.slow
CHANNELS = DOCS / "CHANNELS.md"


def node(start: Callable[..., ServerProcess], url: str, *extra: str) -> tuple[ServerProcess, int]:
    """A node on ``url`` with the HTTP API on a port of its own; (process, API port)."""
    api_port = free_port()
    return start("--broker", url, "--api-key", KEY, "--api-port", str(api_port), *extra), api_port


async def test_two_processes_share_channels_history_and_presence(
    redis_url: str, server_process: Callable[..., ServerProcess]
) -> None:
    (one, _), (two, two_api) = node(server_process, redis_url), node(server_process, redis_url)
    a, b = await Peer.connect(one.url), await Peer.connect(two.url)
    await a.subscribe("room")
    await b.subscribe("room")
    for i in range(20):  # from a client on node two, and from the HTTP API of node two
        if i % 2:
            status, reply = await api(two_api, "publish", {"channel": "room", "data": i})
            assert status == 200, reply
        else:
            await b.send(type="publish", channel="room", data=i)
    got_a, got_b = await a.messages(20), await b.messages(20)
    assert offsets(got_a) == offsets(got_b) == list(range(1, 21))
    assert sorted(m["data"] for m in got_a) == list(range(20))
    assert [m["data"] for m in got_a] == [m["data"] for m in got_b]
    epochs = {m["epoch"] for m in got_a + got_b}
    assert len(epochs) == 1
    for peer in (a, b):
        history = await peer.request(type="history", channel="room", since=15)
        assert offsets(history["messages"]) == [16, 17, 18, 19, 20]
        assert history["epoch"] in epochs
        members = (await peer.request(type="presence", channel="room"))["members"]
        assert {m["session"] for m in members} == {a.session, b.session}
    # A client leaving one node leaves the presence both read.
    await a.ws.close()

    async def only_b() -> bool:
        members = (await b.request(type="presence", channel="room"))["members"]
        return {m["session"] for m in members} == {b.session}

    await eventually(only_b, 10, "a's member is gone from presence")
    await b.nothing_pending()


async def test_the_docs_two_servers_on_one_redis(redis_server: RedisServer, redis_url: str) -> None:
    ports = {"8000": str(free_port()), "8001": str(free_port()), "6379": str(redis_server.port)}
    argvs = commands(block("redis-serve", CHANNELS), ports)
    assert len(argvs) == 2
    servers = [ChildServer(argv, port=int(argv[-1]), env=traced(dict(ENV))) for argv in argvs]
    try:
        for server in servers:
            server.start()
        a, b = await Peer.connect(servers[0].url), await Peer.connect(servers[1].url)
        await a.subscribe("chat")
        await b.subscribe("chat")  # a client publishes where it is subscribed
        reply = await b.request(type="publish", channel="chat", data={"text": "hello"})
        assert reply["type"] == "published", reply
        (msg,) = await a.messages(1)
        assert (msg["offset"], msg["data"]) == (1, {"text": "hello"})
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("transport", ["picows", "granian"])
def test_an_unreachable_redis_at_start_is_one_line_and_exit_status_2(transport: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "fastcomm", "serve", "examples/app.py:app"]
    command += ["--transport", transport, "--port", str(free_port())]
    command += ["--broker", f"redis://:hunter2@127.0.0.1:{port}/0", "--publish-timeout", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastcomm: error: redis at "), done.stderr
    assert f"127.0.0.1:{port} is unreachable" in lines[0] and "hunter2" not in done.stderr


def test_with_broker_wait_the_node_waits_for_redis_to_come(
    server_process: Callable[..., ServerProcess],
) -> None:
    redis = RedisServer()  # its port is free: nothing listens there yet
    later = threading.Timer(1.0, redis.start)
    later.start()
    try:
        proc = server_process("--broker", redis.url, "--broker-wait", "20s")
        assert "is unreachable" in proc.output() and "trying again" in proc.output()
    finally:
        later.join()
        redis.remove()


async def test_a_client_whose_process_is_sigkilled_resumes_on_another_process(
    redis_url: str, server_process: Callable[..., ServerProcess]
) -> None:
    """Behind a balancer, a Python client's process dies by SIGKILL (nothing written):
    the client resumes its session on the other process, with a new token and, at its
    API, no gap and no duplicate."""
    checkpoint = ("--session-checkpoint", "0.3")
    (one, _), (two, two_api) = (node(server_process, redis_url, *checkpoint) for _ in "12")
    async with Balancer(one.port) as lb:
        client = await fastcomm.Client.connect(lb.url(), **FAST)
        try:
            sub = await client.subscribe("feed")
            for i in range(1, 6):
                status, reply = await api(two_api, "publish", {"channel": "feed", "data": i})
                assert status == 200, reply
            got = [await anext(sub) for _ in range(5)]
            session, token = client.session, client.resume_token
            store = redis.Redis.from_url(redis_url)

            def checkpointed() -> bool:  # the record in Redis has offset 5
                data = store.hget(f"fastcomm:s:{{{token}}}", "r")
                kept = None if data is None else msgspec.msgpack.decode(data, type=SessionRecord)
                return kept is not None and kept.positions.get("feed", ("", 0))[1] == 5

            await eventually(checkpointed, 10, "a checkpoint wrote offset 5")
            store.close()
            for i in range(6, 9):  # perhaps after the last checkpoint
                await api(two_api, "publish", {"channel": "feed", "data": i})
            got += [await anext(sub) for _ in range(3)]
            lb.target = two.port
            one.kill()  # SIGKILL: its sockets close, it writes nothing
            lb.cut()
            for i in range(9, 12):
                await api(two_api, "publish", {"channel": "feed", "data": i})
            async with asyncio.timeout(15):
                got += [await anext(sub) for _ in range(3)]
            assert [p.offset for p in got] == list(range(1, 12))
            assert [p.data for p in got] == list(range(1, 12))
            assert client.reconnects == 1 and client.welcome.resumed
            assert client.session == session and client.resume_token != token
        finally:
            await client.close()
