"""What the Redis broker does beyond the broker contract, seen in Redis itself."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import pytest
import redis

from fastcomm.channels.redis_broker import RedisBroker, RedisUnavailable
from fastcomm.protocol.channel_messages import Member, Publication
from tests.redisserver import RedisServer, free_port
from tests.waiting import eventually

H = {"history_size": 10, "history_ttl": 60.0}


def _stat(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


async def test_keys_carry_the_prefix_and_the_channel_in_a_hash_tag(redis_url: str) -> None:
    broker = RedisBroker(redis_url, prefix="app1:", meta_ttl=120.0)
    client = redis.Redis.from_url(redis_url)
    try:
        await broker.publish("chat:1", "x", **H)
        await broker.presence_add("chat:1", Member("s", None))
        tagged = [b"app1:{chat:1}." + suffix for suffix in (b"m", b"p", b"s", b"x")]
        assert sorted(client.keys()) == tagged
        assert 110_000 < client.pttl("app1:{chat:1}.m") <= 120_000  # meta_ttl
        assert 50_000 < client.pttl("app1:{chat:1}.s") <= 60_000  # history_ttl
        other = RedisBroker(redis_url, prefix="app2:")
        assert (await other.position("chat:1")).offset == 0  # another app's channels
        await other.close()
    finally:
        client.close()
        await broker.close()


async def test_subscriptions_of_one_turn_are_one_command_and_last_while_subscribed(
    redis_url: str,
) -> None:
    broker = RedisBroker(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        handle = broker.start(lambda event: None)
        before = _stat(client, "subscribe")
        await asyncio.gather(*(handle.subscribe(f"c{i}") for i in range(100)))
        assert _stat(client, "subscribe") == before + 1
        assert len(client.pubsub_channels()) == 100
        for i in range(100):
            await handle.unsubscribe(f"c{i}")
        await broker.position("c0")  # a round trip: the UNSUBSCRIBE has gone out
        await eventually(lambda: client.pubsub_channels() == [], 5, "unsubscribed in Redis")
    finally:
        client.close()
        await broker.close()


async def test_a_publish_from_another_process_broker_reaches_subscribers_in_order(
    redis_url: str,
) -> None:
    publisher, subscriber = RedisBroker(redis_url), RedisBroker(redis_url)
    got: list[int] = []
    try:
        handle = subscriber.start(lambda e: got.append(e.offset if type(e) is Publication else 0))
        await handle.subscribe("a")
        await asyncio.gather(*(publisher.publish("a", i, **H) for i in range(200)))
        deadline = time.monotonic() + 5
        while len(got) < 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert got == list(range(1, 201))
    finally:
        await publisher.close()
        await subscriber.close()


async def test_unreachable_redis_is_one_line_naming_host_and_port_never_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    broker = RedisBroker(f"redis://user:s3cret@127.0.0.1:{port}/0", publish_timeout=1.0)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(RedisUnavailable) as failed:
            await broker.ping()
        message = str(failed.value)
        assert f"127.0.0.1:{port}" in message and "\n" not in message
        with pytest.raises(Exception) as publish:  # any error: the routes answer 'unavailable'
            await broker.publish("a", 1, **H)
        assert "s3cret" not in f"{message} {publish.value!r} {caplog.text}"
    finally:
        await broker.close()


async def test_a_subscribed_channel_keeps_its_position_past_meta_ttl(redis_url: str) -> None:
    broker = RedisBroker(redis_url, meta_ttl=0.3)
    try:
        handle = broker.start(lambda event: None)
        await handle.subscribe("kept")
        kept = await broker.publish("kept", 1, history_size=0, history_ttl=0.0)
        await broker.publish("idle", 1, history_size=0, history_ttl=0.0)
        await asyncio.sleep(0.7)
        assert await broker.position("kept") == kept  # pushed back while subscribed
        assert (await broker.position("idle")).offset == 0  # expired
        await handle.unsubscribe("kept")
        await asyncio.sleep(0.7)
        assert (await broker.position("kept")).offset == 0
    finally:
        await broker.close()


async def test_a_subscribe_redis_does_not_confirm_in_time_fails_and_leaves_nothing(
    redis_server: RedisServer,
) -> None:
    broker = RedisBroker(redis_server.url, publish_timeout=0.5)
    try:
        handle = broker.start(lambda event: None)
        await handle.subscribe("a")
        redis_server.kill()
        await eventually(lambda: not broker.up, 5, "the outage seen")
        with pytest.raises(TimeoutError):
            await handle.subscribe("b")
        assert broker.subscribed == ["a"] and handle.channels == {"a"}
    finally:
        await broker.close()
        redis_server.start()


async def test_a_redis_that_stops_answering_is_an_outage_until_it_answers_again(
    redis_server: RedisServer, redis_url: str
) -> None:
    broker = RedisBroker(redis_server.url, publish_timeout=0.3, health_interval=0.1)
    assert redis_server.process is not None
    try:
        await broker.ping()
        await broker.start(lambda event: None).subscribe("a")
        redis_server.process.send_signal(signal.SIGSTOP)  # the socket stays open, silent
        await eventually(lambda: not broker.up, 5, "the silence seen as an outage")
        redis_server.process.send_signal(signal.SIGCONT)
        await eventually(lambda: broker.up, 10, "back once it answers")
        assert broker.outages == 1 and broker.subscribed == ["a"]
        assert (await broker.publish("a", 1, **H)).offset == 1
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        await broker.close()
