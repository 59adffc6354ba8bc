"""A broker that misdelivers on purpose: it drops, holds back, reorders and repeats
what it delivers to nodes, and can lose its streams (storage and numbering are the
in-memory broker's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastcomm.channels.broker import BrokerHandle, Deliver, Event
from fastcomm.channels.memory import MemoryBroker
from fastcomm.protocol.channel_messages import Publication

__all__ = ["Unreliable"]

Held = list[tuple[Deliver, Event]]


class Unreliable(MemoryBroker):
    """``drop`` names offsets never delivered; while ``holding``, deliveries wait
    until :meth:`release` makes them (reversed by default: a reordering);
    :meth:`redeliver` delivers an event again to every node (a late duplicate)."""

    def __init__(self, **options: float) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.drop: set[int] = set()
        self.holding = False
        self._held: Held = []
        self._nodes: list[Deliver] = []

    def start(self, deliver: Deliver, **node: Any) -> BrokerHandle:
        self._nodes.append(deliver)

        def misdeliver(event: Event) -> None:
            if type(event) is Publication and event.offset in self.drop:
                return
            if self.holding:
                self._held.append((deliver, event))
            else:
                deliver(event)

        return super().start(misdeliver, **node)

    def release(self, order: Callable[[Held], Held] | None = None) -> None:
        held, self._held, self.holding = self._held, [], False
        for deliver, event in (order or (lambda pairs: pairs[::-1]))(held):
            deliver(event)

    def forget_all(self) -> None:
        """Lose every stream (as an evicted or expired one): the next publication of a
        channel starts a new epoch."""
        for channel in list(self._streams):
            self._drop(channel)

    def redeliver(self, event: Event) -> None:
        for deliver in self._nodes:
            deliver(event)
