"""One node's view of a :class:`~fastcomm.channels.redis_broker.RedisBroker`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastcomm.channels.broker import Deliver

if TYPE_CHECKING:
    from fastcomm.channels.redis_broker import RedisBroker

__all__ = ["RedisHandle"]


class RedisHandle:
    """One node's view of a :class:`RedisBroker` (a
    :class:`~fastcomm.channels.broker.BrokerHandle`)."""

    def __init__(self, broker: RedisBroker, deliver: Deliver) -> None:
        self.broker = broker
        self.deliver = deliver
        self.channels: set[str] = set()
        self.publish = broker.publish
        self.publish_event = broker.publish_event
        self.history = broker.history
        self.position = broker.position
        self.presence_add = broker.presence_add
        self.presence_remove = broker.presence_remove
        self.presence_leave = broker.presence_leave
        self.presence_keep = broker.presence_keep
        self.presence = broker.presence

    def __repr__(self) -> str:
        return f"<RedisBroker handle subscribed={len(self.channels)}>"

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)
        try:
            await self.broker._join(channel, self)
        except BaseException:  # not confirmed in time: not subscribed
            await self.unsubscribe(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self.broker._leave(channel, self)

    async def close(self) -> None:
        for channel in self.channels:
            self.broker._leave(channel, self)
        self.channels.clear()
        self.broker._handles.discard(self)
