"""One node's view of a :class:`~fastcomm.channels.redis_broker.RedisBroker`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastcomm.channels.broker import Control, Deliver
from fastcomm.channels.handle import BoundHandle

if TYPE_CHECKING:
    from fastcomm.channels.redis_broker import RedisBroker

__all__ = ["CONTROL", "RedisHandle"]

log = logging.getLogger("fastcomm.channels")

CONTROL = " control"
"""How the broker names the control channels in its routes (a space: no channel's
name holds one): ``CONTROL`` for broadcasts, ``CONTROL + " " + uid`` for one node."""


class RedisHandle(BoundHandle["RedisBroker"]):
    """One node's view of a :class:`RedisBroker` (a
    :class:`~fastcomm.channels.broker.BrokerHandle`). It receives control messages
    from its first :meth:`announce` on."""

    def __init__(
        self, broker: RedisBroker, deliver: Deliver, uid: str, control: Control | None
    ) -> None:
        super().__init__(broker, deliver, uid, control)
        self.listening = False

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
