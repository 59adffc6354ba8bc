"""Several nodes over one shared broker behave as one server: sessions resume on any
node, and the server API reaches every node. Each node has its own real picows server
on its own port; clients reach them directly or through a TCP balancer.

Each test runs on one MemoryBroker shared by the nodes, and on Redis with a RedisBroker
per node (as separate processes have), all on one redis-server."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import websockets

import fastcomm
from fastcomm.channels.broker import Broker
from fastcomm.channels.memory_nodes import MemoryHandle
from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.sessions.memory_store import MemorySessionStore
from fastcomm.sessions.record import SessionRecord
from tests.integration.balancer import Balancer
from tests.integration.docblocks import ROOT, block, python, save
from tests.integration.test_channels import Peer, offsets, with_users
from tests.integration.test_client_channels import FAST
from tests.integration.test_http_api_embed import free_port
from tests.waiting import eventually

KEY = "node-secret"
NODES = ROOT / "docs" / "NODES.md"


Make = Callable[[], Broker]


def app_on(broker: Broker) -> fastcomm.App:
    app = with_users(fastcomm.App())
    app.use_broker(broker)
    return app


async def record_of(server: fastcomm.Server, token: str) -> SessionRecord | None:
    """The session record of ``token`` as the store holds it, without claiming it."""
    broker = server.node.broker
    if isinstance(broker, RedisBroker):
        data = await broker.redis.hget(broker.sessions.key(token), "r")
        return None if data is None else msgspec.msgpack.decode(data, type=SessionRecord)
    store = broker.sessions
    assert isinstance(store, MemorySessionStore)
    return store.peek(token)


async def die(server: fastcomm.Server) -> None:
    """The node's process dies: its sockets are dropped, its tasks end, and it writes
    nothing (no record, no presence, no goodbye to the broker)."""
    node = server.node
    node.release = lambda conn: None  # type: ignore[method-assign]
    sweeper = node._sweeper
    assert sweeper is not None
    sweeper.cancel()
    for task in list(node.router.inflight):
        task.cancel()
    handle = node.channels.broker
    if isinstance(handle, MemoryHandle):
        handle.forget()
    else:  # its own broker: the pub/sub connection goes with the process
        broker = node.broker
        assert isinstance(broker, RedisBroker)
        await broker.listener.close()
        handle.close = _nothing  # type: ignore[method-assign]
    server._picows.stop_listening()
    for conn in list(node.connections):
        conn.transport.abort()
    node.connections.clear()


async def _nothing() -> None:
    pass


@asynccontextmanager
async def nodes(
    make: Make, n: int, each: list[dict[str, Any]] | None = None, **options: Any
) -> AsyncIterator[list[fastcomm.Server]]:
    """``n`` nodes on brokers from ``make``, started together; ``each`` adds options
    per node."""
    extra = each or [{} for _ in range(n)]
    servers = [fastcomm.Server(app_on(make()), port=0, **options, **extra[i]) for i in range(n)]
    async with asyncio.TaskGroup() as group:
        for server in servers:
            group.create_task(server.start())
    try:
        yield servers
    finally:
        for server in servers:
            await server.stop()


# -- sessions resume on any node ---------------------------------------------------------
async def test_a_client_whose_node_dies_resumes_on_another_with_no_gap_and_no_duplicate(
    brokers: Make,
) -> None:
    async with nodes(brokers, 2, session_checkpoint=0.2) as (one, two), Balancer(one.port) as lb:
        client = await fastcomm.Client.connect(lb.url() + "?user=ann", **FAST)
        try:
            sub = await client.subscribe("feed")
            for i in range(1, 4):
                await two.app.publish("feed", i)
            got = [await anext(sub) for _ in range(3)]
            session, token = client.session, client.resume_token

            async def checkpointed() -> bool:
                kept = await record_of(one, token)
                return kept is not None and kept.positions.get("feed", ("", 0))[1] == 3

            await eventually(checkpointed, 5, "a checkpoint kept offset 3")
            for i in range(4, 7):  # sent, perhaps after the last checkpoint
                await two.app.publish("feed", i)
            got += [await anext(sub) for _ in range(3)]
            lb.target = two.port
            await die(one)
            lb.cut()
            for i in range(7, 10):  # while the client is away
                await two.app.publish("feed", i)
            async with asyncio.timeout(10):
                got += [await anext(sub) for _ in range(3)]
            assert [p.offset for p in got] == list(range(1, 10))
            assert [p.data for p in got] == list(range(1, 10))
            assert client.reconnects == 1 and client.welcome.resumed
            assert client.session == session and client.resume_token != token
            assert two.node.sessions.get(session) is not None
            await two.app.publish("feed", 10)
            assert (await anext(sub)).offset == 10
        finally:
            await client.close()


async def test_a_raw_client_resumed_after_a_node_loss_sees_repeats_at_most_one_checkpoint_old(
    brokers: Make,
) -> None:
    async with nodes(brokers, 2, session_checkpoint=60) as (one, two):
        a = await Peer.connect(one.url, "?user=ann")
        await a.subscribe("feed")  # its record: offset 0, the next checkpoint in 60 s
        for i in range(1, 4):
            await two.app.publish("feed", i)
        assert offsets(await a.messages(3)) == [1, 2, 3]
        await die(one)
        back = await Peer.connect(two.url, f"?user=ann&resume={a.token}")
        assert back.welcome["resumed"] is True and back.session == a.session
        restored = await back.recv()
        assert (restored["type"], restored["id"], restored["recovered"]) == (
            "subscribed",
            None,
            True,
        )
        # Publications since the last checkpoint come again; clients drop them by offset.
        assert offsets(await back.messages(3)) == [1, 2, 3]
        await back.nothing_pending()


async def test_a_session_resumed_while_its_old_connection_lives_takes_it_over(
    brokers: Make,
) -> None:
    async with nodes(brokers, 2, session_checkpoint=60) as (one, two):
        old = await Peer.connect(one.url, "?user=ann")
        await old.subscribe("feed")
        for i in range(1, 3):
            await one.app.publish("feed", i)
        assert offsets(await old.messages(2)) == [1, 2]
        # Here: the old connection's exact positions; no repeat.
        here = await Peer.connect(one.url, f"?user=ann&resume={old.token}")
        assert here.welcome["resumed"] is True and here.session == old.session
        with_reason = await asyncio.wait_for(old.ws.wait_closed(), 5)
        assert with_reason is None and old.ws.close_code == 1008
        assert (await here.recv())["type"] == "subscribed"
        await here.nothing_pending()
        # There: the node holding it is told, and closes it.
        there = await Peer.connect(two.url, f"?user=ann&resume={here.token}")
        assert there.welcome["resumed"] is True and there.session == old.session
        await asyncio.wait_for(here.ws.wait_closed(), 5)
        assert here.ws.close_code == 1008
        await eventually(lambda: one.node.sessions.get(old.session) is None, 5, "one forgot it")
        assert two.node.sessions.get(old.session) is not None


# -- the server API reaches every node ----------------------------------------------------
def api(port: int, command: str, **params: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{command}",
        data=json.dumps(params).encode(),
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


async def call(port: int, command: str, **params: Any) -> dict[str, Any]:
    return await asyncio.to_thread(api, port, command, **params)


async def test_push_disconnect_unsubscribe_and_counts_reach_every_node(brokers: Make) -> None:
    ports = [free_port(), free_port()]
    each = [{"api_port": port} for port in ports]
    async with nodes(brokers, 2, each, api_key=KEY) as (one, two):
        ann_one = await Peer.connect(one.url, "?user=ann")
        ann_two = await Peer.connect(two.url, "?user=ann")
        bob_two = await Peer.connect(two.url, "?user=bob")
        for peer in (ann_one, ann_two, bob_two):
            await peer.subscribe("room")
        await ann_two.subscribe("ann:inbox")

        # push through the Python API, from either node
        assert await one.app.push("ann", {"type": "notice", "n": 1}) == 2
        assert await two.app.push(bob_two.session, {"type": "notice", "n": 2}) == 1
        assert await one.app.push(bob_two.session, {"type": "notice", "n": 3}) == 1
        assert [(await p.recv())["n"] for p in (ann_one, ann_two)] == [1, 1]
        assert [(await bob_two.recv())["n"] for _ in range(2)] == [2, 3]
        assert await one.app.push("nobody", {"type": "notice"}) == 0

        # channels and info: summed over the nodes, every node listed
        counts = (await call(ports[0], "channels"))["result"]["channels"]
        assert {name: c["num_clients"] for name, c in counts.items()} == {
            "room": 3,
            "ann:inbox": 1,
        }
        assert await one.node.api.channels("ann:*") == {"ann:inbox": 1}
        listed = (await call(ports[1], "info"))["result"]["nodes"]
        assert [n["uid"] for n in listed] == [two.node.uid, one.node.uid]
        assert sum(n["num_clients"] for n in listed) == 3

        # unsubscribe on every node: through the HTTP API and the Python API
        done = await call(ports[0], "unsubscribe", user="ann", channel="room")
        assert done["result"] == {"unsubscribed": 2}
        for peer in (ann_one, ann_two):
            assert await peer.recv() == {"type": "unsubscribed", "id": None, "channel": "room"}
        assert await two.node.api.unsubscribe("bob", "room") == 1
        assert (await bob_two.recv())["type"] == "unsubscribed"
        assert await one.node.api.channels("room") == {}

        # disconnect a session that lives on the other node: 4003 revokes it
        assert await one.app.disconnect(ann_two.session) is True
        await asyncio.wait_for(ann_two.ws.wait_closed(), 5)
        assert ann_two.ws.close_code == 4003
        back = await Peer.connect(one.url, f"?user=ann&resume={ann_two.token}")
        assert back.welcome["resumed"] is False  # revoked: no resume on any node
        closed = await call(ports[1], "disconnect", user="ann")
        assert closed["result"] == {"disconnected": 2}
        for peer in (ann_one, back):
            await asyncio.wait_for(peer.ws.wait_closed(), 5)
            assert peer.ws.close_code == 4003
        await bob_two.nothing_pending()


async def test_a_dead_node_is_not_waited_for_once_it_left_the_registry(brokers: Make) -> None:
    options = {"node_ttl": 0.6, "command_timeout": 0.3}
    async with nodes(brokers, 2, **options) as (one, two):

        async def both() -> bool:
            return {n["uid"] for n in await one.node.api.nodes()} == {one.node.uid, two.node.uid}

        await eventually(both, 5, "both nodes announced themselves")
        await die(two)
        # Still listed: a command waits for it up to command_timeout, then answers.
        assert await one.app.push("ann", {"type": "notice"}) == 0
        assert one.node.cluster.unanswered >= 1

        async def alone() -> bool:
            return [n["uid"] for n in await one.node.api.nodes()] == [one.node.uid]

        await eventually(alone, 5, "the dead node left the registry")
        waited = one.node.cluster.unanswered
        assert await one.app.push("ann", {"type": "notice"}) == 0
        assert one.node.cluster.unanswered == waited  # nobody to wait for


async def test_a_node_stopping_cleanly_leaves_the_registry_at_once(brokers: Make) -> None:
    async with nodes(brokers, 2) as (one, two):
        await two.stop()
        assert [n["uid"] for n in await one.node.api.nodes()] == [one.node.uid]


async def test_a_websockets_client_resumes_on_another_node_after_a_clean_drop(
    brokers: Make,
) -> None:
    async with nodes(brokers, 2) as (one, two):
        a = await Peer.connect(one.url, "?user=ann")
        await a.subscribe("feed")
        await one.app.publish("feed", "x")
        assert offsets(await a.messages(1)) == [1]
        await a.close()  # a clean disconnect writes the exact positions

        async def detached() -> bool:
            kept = await record_of(one, a.token)
            if kept is None or kept.node:
                return False  # still the record of a live session
            return kept.positions.get("feed", ("", 0))[1] == 1

        await eventually(detached, 5, "the record of the detached session")
        await two.app.publish("feed", "y")
        async with websockets.connect(two.url + f"?user=ann&resume={a.token}") as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["resumed"] is True and welcome["session"] == a.session
            restored = json.loads(await ws.recv())
            assert (restored["type"], restored["recovered"]) == ("subscribed", True)
            assert json.loads(await ws.recv())["offset"] == 2  # only what it missed


def test_the_two_nodes_example_of_the_docs(tmp_path: Path) -> None:
    name = save(block("two-nodes", NODES), tmp_path)
    ran = python(name, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "pushed to 1\n"
