"""The broker settings: which brokers a configuration may name, and what it makes."""

from __future__ import annotations

import pytest

from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.config import Namespace, build_config
from fastcomm.errors import ConfigError
from fastcomm.node.brokers import make_broker, meta_ttl


@pytest.mark.parametrize(
    "url",
    [
        "memory",
        "redis://127.0.0.1:6379/0",
        "redis://:p4ss@redis.example:6380/2",
        "rediss://user:p4ss@redis.example/0",
        "unix:///run/redis/redis.sock?db=1",
    ],
)
def test_the_broker_is_memory_or_a_redis_url(url: str) -> None:
    assert build_config({"broker": url}, env={}).broker == url


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("memcached://h", "broker must be memory or a redis://, rediss:// or unix:// URL"),
        ("Memory", "broker must be memory or a redis://"),
        ("redis://:p4ss@/0", "broker URL 'redis:/0' names no server"),
        ("redis://user:p4ss@h:99999/0", "broker URL 'redis://h:99999/0' names no server"),
        ("unix://", "names no server"),
    ],
)
def test_a_broker_that_cannot_work_is_one_line_without_the_password(url: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build_config({"broker": url}, env={})
    assert phrase in str(refused.value) and "p4ss" not in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_bad_broker_in_the_environment_is_said_to_come_from_there() -> None:
    with pytest.raises(ConfigError, match=r"^FASTCOMM_BROKER: broker must be memory"):
        build_config(env={"FASTCOMM_BROKER": "mysql://h"})


def test_workers_need_a_shared_broker() -> None:
    with pytest.raises(ConfigError, match=r"use --broker redis://\.\.\. or workers = 1"):
        build_config({"workers": 2}, env={})
    config = build_config({"workers": 2, "broker": "redis://h:6379/0"}, env={})
    assert config.workers == 2


async def test_the_position_outlives_the_longest_session_or_history_by_default() -> None:
    config = build_config(
        {"session_ttl": 100, "namespaces": [Namespace(pattern="long:*", history_ttl=900)]},
        env={},
    )
    assert meta_ttl(config) == 960.0
    assert meta_ttl(build_config({"history_meta_ttl": "2h"}, env={})) == 7200.0
    memory, owned = make_broker(None, config)
    assert isinstance(memory, MemoryBroker) and owned and memory.meta_ttl == 960.0
    redis, owned = make_broker(None, build_config({"broker": "redis://h:1/0"}, env={}))
    assert isinstance(redis, RedisBroker) and owned
    assert (redis.meta_ttl, redis.prefix, redis.publish_timeout) == (360.0, "fastcomm:", 5.0)
    await redis.close()
    await memory.close()


@pytest.mark.parametrize("ttl", ["10s", "0", "inf"])
def test_a_meta_ttl_shorter_than_history_is_refused(ttl: str) -> None:
    with pytest.raises(ConfigError, match=r"history_meta_ttl must be .* at least the longest"):
        build_config({"history_meta_ttl": ttl, "history_ttl": 60}, env={})


def test_the_broker_settings_take_units_and_a_prefix() -> None:
    config = build_config(
        {"broker_prefix": "app1:", "publish_timeout": "250ms", "broker_wait": "1m"}, env={}
    )
    assert (config.broker_prefix, config.publish_timeout, config.broker_wait) == (
        "app1:",
        0.25,
        60.0,
    )
    with pytest.raises(ConfigError, match="publish_timeout must be greater than 0"):
        build_config({"publish_timeout": 0}, env={})
