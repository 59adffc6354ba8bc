"""The nodes of a :class:`~fastcomm.channels.memory.MemoryBroker`: their handles,
the node registry and the control messages between them (all in this process)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastcomm.channels.broker import Control, Deliver
from fastcomm.channels.handle import BoundHandle

if TYPE_CHECKING:
    from fastcomm.channels.memory import MemoryBroker

__all__ = ["MemoryHandle", "NodeBus"]

log = logging.getLogger("fastcomm.channels")


class NodeBus:
    """The registry (uid -> deadline and info) and the control messages' routes."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.handles: dict[str, MemoryHandle] = {}  # uid -> the handle that control reaches
        self.registry: dict[str, tuple[float, bytes]] = {}

    def nodes(self) -> dict[str, bytes]:
        now = self.clock()
        for uid in [u for u, (deadline, _) in self.registry.items() if deadline <= now]:
            del self.registry[uid]
        return {uid: info for uid, (_, info) in self.registry.items()}

    def send(self, sender: MemoryHandle, data: bytes, node: str | None) -> None:
        """Hand ``data`` to the control callback of ``node``, or of every node but
        the sender, on a later turn of the loop (never inside the caller)."""
        if node is None:
            targets = [h for h in self.handles.values() if h is not sender]
        else:
            target = self.handles.get(node)
            targets = [] if target is None else [target]
        loop = asyncio.get_running_loop()
        for handle in targets:
            loop.call_soon(handle.receive, data)


class MemoryHandle(BoundHandle["MemoryBroker"]):
    """One node's view of a :class:`MemoryBroker` (a
    :class:`~fastcomm.channels.broker.BrokerHandle`)."""

    def __init__(
        self, broker: MemoryBroker, deliver: Deliver, uid: str, control: Control | None
    ) -> None:
        super().__init__(broker, deliver, uid, control)
        self.reconnects = 0  # nothing to lose: the broker is this process

    def __repr__(self) -> str:
        return f"<MemoryBroker handle {self.uid} subscribed={len(self.channels)}>"

    async def subscribe(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.add(channel)
            self.broker._subs.setdefault(channel, {})[self] = None

    async def unsubscribe(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self.broker._unsubscribe(channel, self)

    # -- the node registry and control messages ----------------------------------------
    async def announce(self, info: bytes, ttl: float) -> None:
        bus = self.broker.bus
        bus.registry[self.uid] = (bus.clock() + ttl, info)

    async def nodes(self) -> dict[str, bytes]:
        return self.broker.bus.nodes()

    async def send(self, data: bytes, node: str | None = None) -> None:
        self.broker.bus.send(self, data, node)

    def receive(self, data: bytes) -> None:
        if self.control is not None and self.broker.bus.handles.get(self.uid) is self:
            try:
                self.control(data)
            except Exception:
                log.exception("a control message failed")

    def forget(self) -> None:
        """Drop this node's subscriptions and routes, and nothing else: what a node
        that dies leaves behind (its registry entry and records expire)."""
        for channel in self.channels:
            self.broker._unsubscribe(channel, self)
        self.channels.clear()
        self.broker._handles.discard(self)
        bus = self.broker.bus
        if bus.handles.get(self.uid) is self:
            del bus.handles[self.uid]

    async def close(self) -> None:
        self.forget()
        self.broker.bus.registry.pop(self.uid, None)
