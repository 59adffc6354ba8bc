"""One channel's state on a node: its subscribers and the last publication fanned out."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastcomm.channels.broker import Event
from fastcomm.channels.joiner import Joiner, Position

if TYPE_CHECKING:
    from fastcomm.protocol.codec import Codec
    from fastcomm.sessions.connection import Connection

__all__ = ["ChannelState"]


class ChannelState:
    """One channel with subscribers on this node.

    ``groups`` holds live subscribers by codec (one encoding per group);
    ``pending`` those being set up; ``epoch``/``offset`` is the last
    publication fanned out (epoch None until the first); ``stopped`` the
    positions of live subscribers whose send failed; ``ready`` resolves once
    the broker subscription is in place (None until it is asked for);
    ``held`` buffers deliveries while a gap is repaired.
    """

    __slots__ = ("epoch", "groups", "held", "name", "offset", "pending", "ready", "stopped")

    def __init__(self, name: str) -> None:
        self.name = name
        self.groups: dict[Codec, dict[Connection, None]] = {}
        self.pending: dict[Connection, Joiner] = {}
        self.stopped: dict[Connection, Position] | None = None
        self.epoch: str | None = None
        self.offset = 0
        self.ready: asyncio.Future[None] | None = None
        self.held: list[Event] | None = None

    def __len__(self) -> int:
        return sum(map(len, self.groups.values())) + len(self.pending)

    def caught_up(self, entry: Joiner) -> bool:
        """True when ``entry`` has been sent exactly what this channel fanned out: not
        less (it would miss some), not more (late deliveries must still be filtered)."""
        if entry.epoch is None or entry.last != self.offset:
            return False
        return entry.epoch == self.epoch or self.offset == 0
