"""One node's view of a :class:`~fastcomm.channels.redis_broker.RedisBroker`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastcomm.channels.broker import Control, Deliver

if TYPE_CHECKING:
    from fastcomm.channels.redis_broker import RedisBroker

__all__ = ["CONTROL", "RedisHandle"]

log = logging.getLogger("fastcomm.channels")

CONTROL = " control"
"""How the broker names the control channels in its routes (a space: no channel's
name holds one): ``CONTROL`` for broadcasts, ``CONTROL + " " + uid`` for one node."""


class RedisHandle:
    """One node's view of a :class:`RedisBroker` (a
    :class:`~fastcomm.channels.broker.BrokerHandle`). It receives control messages
    from its first :meth:`announce` on."""

    def __init__(
        self, broker: RedisBroker, deliver: Deliver, uid: str, control: Control | None
    ) -> None:
        self.broker = broker
        self.deliver = deliver
        self.uid = uid
        self.control = control
        self.channels: set[str] = set()
        self.listening = False
        self.publish = broker.publish
        self.publish_event = broker.publish_event
        self.history = broker.history
        self.position = broker.position
        self.presence_add = broker.presence_add
        self.presence_remove = broker.presence_remove
        self.presence_leave = broker.presence_leave
        self.presence_keep = broker.presence_keep
        self.presence = broker.presence
        self.sessions = broker.sessions

    def __repr__(self) -> str:
        return f"<RedisBroker handle {self.uid} subscribed={len(self.channels)}>"

    @property
    def reconnects(self) -> int:
        return self.broker.reconnects

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

    # -- the node registry and control messages ----------------------------------------
    async def announce(self, info: bytes, ttl: float) -> None:
        if not self.listening:
            await self.broker.routes.listen(self)
            self.listening = True
        await self.broker.registry.announce(self.uid, info, ttl)

    async def nodes(self) -> dict[str, bytes]:
        return await self.broker.registry.nodes()

    async def send(self, data: bytes, node: str | None = None) -> None:
        await self.broker.registry.send(self.uid, data, node)

    def receive(self, sender: str, data: bytes) -> None:
        if self.control is not None and sender != self.uid:
            try:
                self.control(data)
            except Exception:
                log.exception("a control message failed")

    async def close(self) -> None:
        for channel in self.channels:
            self.broker._leave(channel, self)
        self.channels.clear()
        self.broker._handles.discard(self)
        if self.listening:
            self.listening = False
            self.broker.routes.unlisten(self)
            try:
                await self.broker.registry.forget(self.uid)
            except Exception as exc:  # noqa: BLE001 - it expires after node_ttl
                log.warning(
                    "redis at %s: leaving the node registry failed: %r", self.broker.where, exc
                )
