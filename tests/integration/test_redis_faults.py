"""The Redis broker when Redis goes away and comes back, under two live nodes: no
crash, no ERROR per message, publishes answered ``unavailable`` within the publish
timeout, the outage in ``/status`` and ``fastcomm_broker_up``; afterwards every
subscription is live again, the live presence members and session records are
written again, and what it missed is either delivered in order from
the stream or, when Redis lost its data, reported (``subscribed`` with
``recovered: false``): never a silent gap, never a deaf node."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import msgspec
import pytest
import redis

import fastcomm
from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.channels.redis_scripts import PUBLISH, keys_of
from tests.integration.conftest import http_get, running, status_of
from tests.integration.test_channels import Peer, offsets
from tests.redisserver import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.slow
OPTIONS = {"publish_timeout": 1.0}


def up(server: fastcomm.Server) -> bool:
    broker = server.node.broker
    assert isinstance(broker, RedisBroker)
    return broker.up


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill and restart."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.remove()


async def test_redis_killed_and_restarted_empty(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_redis.url
    strict = {"readyz_needs_broker": True, **OPTIONS}
    async with running(broker=url, **OPTIONS) as one, running(broker=url, **strict) as two:
        a, b, c = [await Peer.connect(server.url) for server in (one, two, one)]
        for peer in (a, b, c):
            await peer.subscribe("room")
        for i in range(3):
            await b.request(type="publish", channel="room", data=i)
        assert offsets(await a.messages(3)) == [1, 2, 3]
        assert offsets(await b.messages(3)) == [1, 2, 3]
        epoch = (await a.request(type="history", channel="room"))["epoch"]

        own_redis.kill()
        caplog.clear()
        await eventually(lambda: not up(one), 5, "node one sees the outage")
        for i in range(5):
            started = time.monotonic()
            reply = await b.request(type="publish", channel="room", data=i)
            assert reply["type"] == "error" and reply["code"] == "unavailable", reply
            assert time.monotonic() - started < 3.0
        refused = await a.request(type="subscribe", channel="other")
        assert refused["type"] == "error" and refused["code"] == "unavailable", refused
        # Commands reach this node only: the others cannot be asked meanwhile.
        assert await one.app.push(a.session, {"type": "notice"}) == 1
        assert (await a.recv())["type"] == "notice"
        late = await Peer.connect(one.url)  # connecting needs no broker
        await late.ws.close()
        await c.ws.close()  # leaving presence fails: said, not an ERROR
        await eventually(lambda: len(one.node.connections) == 1, 5, "c and late gone")
        status = await status_of(one)
        assert status["broker"]["up"] is False and status["broker"]["outages"] == 1
        code, body = await http_get(one.port, "/metrics")
        assert code == 200 and b"fastcomm_broker_up 0.0" in body
        assert await http_get(one.port, "/readyz") == (200, b"ready\n")  # the default
        await eventually(lambda: not up(two), 5, "node two sees the outage")
        assert await http_get(two.port, "/readyz") == (503, b"broker unavailable\n")
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

        own_redis.start()  # empty: the channel starts a new epoch
        await eventually(lambda: up(one) and up(two), 10, "both nodes are back")
        assert await http_get(two.port, "/readyz") == (200, b"ready\n")
        # What the nodes keep in Redis is written again: presence and session records.

        async def relisted() -> bool:
            members = await two.app.presence("room")
            return {m.session for m in members} == {a.session, b.session}

        await eventually(relisted, 10, "the live members are listed again")
        store = redis.Redis.from_url(url)
        try:
            await eventually(
                lambda: all(store.exists(f"fastcomm:s:{{{p.token}}}") for p in (a, b)),
                10,
                "the live sessions' records are written again",
            )
        finally:
            store.close()
        reply = await b.request(type="publish", channel="room", data="after")
        assert reply["type"] == "published", reply
        for peer in (a, b):
            told = await peer.recv()
            assert told["type"] == "subscribed" and told["recovered"] is False, told
            assert told["epoch"] != epoch
            (msg,) = await peer.messages(1)
            assert (msg["data"], msg["offset"]) == ("after", 1)
        code, body = await http_get(one.port, "/metrics")
        assert b"fastcomm_broker_up 1.0" in body
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_lost_subscription_gets_what_it_missed_from_the_stream(
    own_redis: RedisServer,
) -> None:
    url = own_redis.url
    async with running(broker=url, **OPTIONS) as one, running(broker=url, **OPTIONS) as two:
        a, b = await Peer.connect(one.url), await Peer.connect(two.url)
        await a.subscribe("room")
        await b.subscribe("room")
        await b.request(type="publish", channel="room", data=0)
        assert offsets(await a.messages(1)) == [1]
        # Redis drops the pub/sub connections (its data stays), and publications are
        # made before node one can reconnect: this loop is blocked meanwhile.
        client = redis.Redis.from_url(url)
        try:
            client.client_kill_filter(_type="pubsub")
            script = client.register_script(PUBLISH)
            base = keys_of("fastcomm:", "room")
            for i in range(1, 6):
                now = time.time()
                data, deadline = msgspec.msgpack.encode(i), int((now + 300) * 1000)
                args = [data, 100, deadline, 0, 360_000, 300_000, 121, int(now * 1000), base, 0]
                script(keys=[base + ".m", base + ".s", base + ".i."], args=args)
        finally:
            client.close()
        got = await a.messages(5)
        assert offsets(got) == [2, 3, 4, 5, 6]  # from history, in order, no gap
        assert [m["data"] for m in got] == [1, 2, 3, 4, 5]
        broker = one.node.broker
        assert isinstance(broker, RedisBroker) and broker.outages == 1 and broker.up
        await b.request(type="publish", channel="room", data="live")
        (live,) = await a.messages(1)
        assert live["offset"] == 7  # live again
        await a.nothing_pending()
