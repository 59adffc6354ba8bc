"""A subscription being set up, and positions in a channel's stream."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastcomm.channels.broker import Event
from fastcomm.protocol.channel_messages import Publication

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["Joiner", "Position", "follows"]

Position = tuple[str, int]
"""``(epoch, offset)`` of the last publication delivered to a subscriber."""


def follows(epoch: str | None, offset: int, pub: Publication) -> bool:
    """True when ``pub`` is the next publication after ``epoch``/``offset`` (offset 0
    is "nothing yet": the first publication of any epoch follows it; with no epoch
    yet, anything does)."""
    if epoch is None:
        return True
    if offset == 0:
        return pub.offset == 1
    return pub.epoch == epoch and pub.offset == offset + 1


class Joiner:
    """A subscription of ``conn`` that is not live yet.

    ``epoch``/``last`` is what the client has been sent (None before
    ``subscribed``, unless restored from a session). While ``buffer`` is a
    list, events are kept there; once the history is sent it is None and
    events are sent directly, skipping publications already sent.
    ``cancelled`` is set when the connection went away or gave up the channel;
    ``settled`` once the subscribe request is answered.
    """

    __slots__ = ("_waiter", "buffer", "cancelled", "conn", "epoch", "last", "settled")

    def __init__(self, conn: Connection, position: Position | None = None) -> None:
        self.conn = conn
        self.epoch: str | None = None
        self.last = 0
        if position is not None:
            self.epoch, self.last = position
        self.buffer: list[Event] | None = []
        self.cancelled = False
        self.settled = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def position(self) -> Position | None:
        return None if self.epoch is None else (self.epoch, self.last)

    def send(self, pub: Publication) -> bool:
        """Send one publication; advance the position only if it went out."""
        if self.conn.send(pub):
            self.epoch = pub.epoch
            self.last = pub.offset
            return True
        return False

    def offer(self, event: Event) -> None:
        """Buffer ``event``, or send it unless it is a publication already sent."""
        if self.buffer is not None:
            self.buffer.append(event)
        elif type(event) is Publication:
            if event.epoch != self.epoch or event.offset > self.last:
                self.send(event)
        else:
            self.conn.send(event)

    def settle(self) -> None:
        """Mark the subscribe request as finished (replied to, or given up)."""
        self.settled = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_settled(self) -> None:
        if not self.settled:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
