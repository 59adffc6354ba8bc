"""What the Redis broker does in the background for the channels its nodes follow.

- :func:`keep_positions`: the meta hash of a channel expires ``meta_ttl`` after
  its last publication; while a node of this process is subscribed, its TTL is
  pushed back every third of that (one pipeline of ``PEXPIRE`` per batch of
  channels), so a quiet channel with live subscribers keeps its epoch, as in
  the memory broker.
- :func:`check_health`: a ``PING`` on the pub/sub connection every
  ``health_interval`` seconds; no answer within ``publish_timeout`` (a host gone
  without closing the socket) counts as a lost connection.
- :func:`resume_missed`: after the pub/sub connection came back, the newest
  publication of each channel is handed to the nodes again: one that missed
  some sees its offset jump and reads the rest from history (or, in a new
  epoch, tells its subscribers that recovery failed); one that missed none
  drops it as already seen.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fastcomm.channels.redis_scripts import keys_of

if TYPE_CHECKING:
    from fastcomm.channels.redis_broker import RedisBroker

__all__ = ["BATCH", "check_health", "keep_positions", "resume_missed"]

log = logging.getLogger("fastcomm.channels")

BATCH = 1000
"""Channels per pipeline of :func:`keep_positions`."""


async def keep_positions(broker: RedisBroker) -> None:
    """Forever (until cancelled): every ``meta_ttl / 3``, push back the meta TTL of
    every channel this process is subscribed to."""
    ttl_ms = int(broker.meta_ttl * 1000)
    while True:
        await asyncio.sleep(broker.meta_ttl / 3)
        channels = list(broker.subscribed)
        for start in range(0, len(channels), BATCH):
            pipe = broker.redis.pipeline(transaction=False)
            for channel in channels[start : start + BATCH]:
                pipe.pexpire(keys_of(broker.prefix, channel) + ".m", ttl_ms)
            try:
                async with asyncio.timeout(broker.publish_timeout):
                    await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - Redis away: the next round retries
                log.warning("redis at %s: keeping positions failed: %r", broker.where, exc)
                break


async def check_health(broker: RedisBroker) -> None:
    """Forever (until cancelled): ping the pub/sub connection while it is up."""
    listener = broker.listener
    while True:
        await asyncio.sleep(broker.health_interval)
        if listener.connected:
            try:
                async with asyncio.timeout(broker.publish_timeout):
                    await listener.settle()
            except TimeoutError:
                listener.lost(TimeoutError(f"no answer to PING in {broker.publish_timeout:g} s"))


async def resume_missed(broker: RedisBroker, channels: list[str]) -> None:
    """Hand the newest publication of each of ``channels`` to this process's nodes."""
    for channel in channels:
        try:
            page = await broker.history(channel, limit=1)
        except Exception as exc:  # noqa: BLE001 - lost again: the next reconnection retries
            log.warning("redis at %s: cannot read %r: %r", broker.where, channel, exc)
            return
        for pub in page.publications:
            broker.fan_out(channel, pub)
