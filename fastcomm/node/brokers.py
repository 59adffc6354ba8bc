"""The broker of a node, chosen in the configuration (``broker``: ``memory`` or a
Redis URL), and the check that a networked one answers before the node starts."""

from __future__ import annotations

import asyncio
import logging
import time

from fastcomm.channels.broker import Broker
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.namespaces import Namespaces
from fastcomm.channels.redis_broker import RedisBroker, RedisUnavailable
from fastcomm.config import Config
from fastcomm.errors import ConfigError, StartupError

__all__ = ["make_broker", "meta_ttl", "reach"]

log = logging.getLogger("fastcomm.node")

_META_TTL_MARGIN = 60.0
_REDIS = ("redis://", "rediss://", "unix://")


def meta_ttl(config: Config) -> float:
    """How long a channel's position outlives its last publication: ``history_meta_ttl``,
    or by default the longest session TTL or history TTL, plus a margin (so a session
    resumed in time finds its channels' epochs)."""
    if config.history_meta_ttl is not None:
        return config.history_meta_ttl
    return max(config.session_ttl, Namespaces(config).max_history_ttl()) + _META_TTL_MARGIN


def make_broker(given: Broker | None, config: Config) -> tuple[Broker, bool]:
    """``(broker, owned)``: ``given`` (set with ``app.use_broker``; its maker closes
    it), else a new one of the kind ``config.broker`` names, which the node owns.

    ``memory`` (the default) keeps channel state in this process; a Redis URL
    shares it with every process using the same Redis and ``broker_prefix``.
    Either way a channel's position lives for :func:`meta_ttl` after its last
    publication; a channel never published to costs nothing. Raises
    :class:`ConfigError` for an unknown broker.
    """
    if given is not None:
        return given, False
    if config.broker == "memory":
        broker: Broker = MemoryBroker(
            meta_ttl=meta_ttl(config),
            max_streams=config.max_streams,
            max_history_bytes=config.max_history_bytes,
            max_detached_sessions=config.max_resumable_sessions,
            idempotency_window=config.idempotency_window,
        )
        return broker, True
    if config.broker.startswith(_REDIS):
        broker = RedisBroker(
            config.broker,
            prefix=config.broker_prefix,
            meta_ttl=meta_ttl(config),
            publish_timeout=config.publish_timeout,
            idempotency_window=config.idempotency_window,
        )
        return broker, True
    raise ConfigError(f"unknown broker {config.broker!r}")


async def reach(broker: Broker, wait: float) -> None:
    """Return once a networked ``broker`` answers, retrying with backoff for up to
    ``wait`` seconds; :class:`StartupError` (one line naming host:port) if it does
    not. The memory broker always answers."""
    if not isinstance(broker, RedisBroker):
        return
    deadline, delay = time.monotonic() + wait, 0.1
    while True:
        try:
            await broker.ping()
            return
        except RedisUnavailable as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StartupError(str(exc)) from None
            log.warning("%s; trying again in %.1f s", exc, min(delay, left))
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)
