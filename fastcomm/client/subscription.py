"""A channel subscription on the client: an async iterator of publications.

::

    async with await client.subscribe("chat:lobby") as sub:
        async for pub in sub:                 # Publication(channel, offset, epoch, data)
            print(pub.offset, pub.data)

Contracts of :class:`Subscription`:

* Iterating (or :meth:`~Subscription.receive`) yields the channel's
  :class:`~fastcomm.protocol.channel_messages.Publication` pushes in offset
  order, each at most once, across reconnects: within an epoch, a
  publication whose offset is not above the last one yielded is a duplicate
  and is dropped (counted in ``duplicates``).
* ``epoch`` and ``offset`` are the position of the last publication yielded;
  right after :meth:`Client.subscribe` they are the stream top at
  subscription time, so the first publication yielded is ``offset + 1``.
* ``join``/``leave`` pushes of the channel and :class:`RecoveryFailed`
  notices are not yielded with the publications (every consumer would have
  to filter them out) but queued for :meth:`~Subscription.events` /
  :meth:`~Subscription.next_event`. Like the client's inbox, both queues are
  unbounded; ``join``/``leave`` only come where the channel's namespace
  enables them.
* ``recovered`` is False once publications after ``offset`` are known to be
  lost: a reconnect could not recover them (history trimmed, or a new epoch:
  the server restarted or lost its history), or history no longer held a
  gap in the offsets. A :class:`RecoveryFailed` is queued at the same
  moment, and iteration goes on with the publications after the new
  position; the application resyncs its state. It is True again after a
  reconnect that recovered everything.
* The subscription ends with :meth:`~Subscription.unsubscribe`, when the
  server refuses it on a reconnect, or when the client closes or gives up
  reconnecting. Publications already received are still yielded, then
  iteration stops; :meth:`~Subscription.receive` raises
  :class:`SubscriptionClosed` (the subscription ended, not the client; a
  subclass of ConnectionClosed with code 1000) or
  :class:`~fastcomm.errors.ConnectionClosed` (the client ended).

The methods with a leading underscore are the synchronous state machine the
client drives (:mod:`fastcomm.client.channels`): ``_deliver`` filters a
publication and reports a gap, ``_hold``/``_release`` buffer publications
while a (re)subscription or a gap fill is in flight, ``_apply`` takes a
``subscribed`` reply, ``_fill`` takes a ``history`` reply.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from fastcomm.client.inbox import Inbox
from fastcomm.errors import CloseCode, ConnectionClosed
from fastcomm.protocol.channel_messages import HistoryReply, Join, Leave, Publication, Subscribed

__all__ = ["RecoveryFailed", "Subscription", "SubscriptionClosed", "SubscriptionEvent"]

log = logging.getLogger("fastcomm.client")


@dataclass(frozen=True, slots=True)
class RecoveryFailed:
    """Publications between the old and the new position may be lost: resync.

    ``previous_epoch``/``previous_offset`` is the last position yielded;
    ``epoch``/``offset`` is where the subscription goes on from.
    """

    channel: str
    epoch: str
    offset: int
    previous_epoch: str
    previous_offset: int


#: What :meth:`Subscription.events` yields.
SubscriptionEvent = Join | Leave | RecoveryFailed


class SubscriptionClosed(ConnectionClosed):
    """The subscription ended while the client goes on; ``reason`` says why."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(CloseCode.NORMAL, reason)
        self.channel = channel


class _Owner(Protocol):
    async def _unsubscribe(self, sub: Subscription, timeout: float | None) -> None: ...


class Subscription:
    """One channel the client is subscribed to; see the module docstring."""

    __slots__ = (
        "_events",
        "_held",
        "_inbox",
        "_owner",
        "channel",
        "duplicates",
        "epoch",
        "offset",
        "recover",
        "recovered",
    )

    def __init__(self, owner: _Owner, channel: str, *, recover: bool = True) -> None:
        self._owner = owner
        self.channel = channel
        self.recover = recover
        self.epoch: str | None = None  # None until the first ``subscribed``
        self.offset = 0
        self.recovered = True
        self.duplicates = 0
        self._inbox: Inbox[Publication] = Inbox()
        self._events: Inbox[SubscriptionEvent] = Inbox()
        self._held: list[Publication] | None = None

    # -- the public side -----------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the subscription ended (publications may remain to be read)."""
        return self._inbox.closed

    @property
    def pending(self) -> int:
        """Publications received and not read yet."""
        return len(self._inbox)

    async def receive(self, timeout: float | None = None) -> Publication:
        """The next publication; TimeoutError after ``timeout`` s; see the module docstring."""
        return await self._inbox.get(timeout)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Publication:
        try:
            return await self._inbox.get()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def next_event(self, timeout: float | None = None) -> SubscriptionEvent:
        """The next ``join``/``leave``/:class:`RecoveryFailed`, like :meth:`receive`."""
        return await self._events.get(timeout)

    async def events(self) -> AsyncIterator[SubscriptionEvent]:
        """Iterate over the events until the subscription ends."""
        while True:
            try:
                event = await self._events.get()
            except ConnectionClosed:
                return
            yield event

    async def unsubscribe(self, timeout: float | None = 10.0) -> None:
        """End the subscription now and tell the server (no-op once ended).

        While the client is reconnecting nothing is sent; a subscription the
        server restores later is then dropped. Raises TimeoutError if the
        server does not answer within ``timeout`` s (the subscription has ended
        anyway).
        """
        await self._owner._unsubscribe(self, timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.unsubscribe()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "active"
        return f"<Subscription {self.channel!r} {self.epoch}:{self.offset} {state}>"

    # -- the state machine the client drives ----------------------------------------
    def _deliver(self, pub: Publication) -> int | None:
        """Yield ``pub`` unless it is a duplicate. If offsets ``offset+1 ..
        pub.offset-1`` are missing, hold ``pub`` and return ``pub.offset - 1``:
        the caller fills the gap (:meth:`_fill`). Buffers while held."""
        if self._held is not None or self.epoch is None:
            if not self.closed:
                (self._held if self._held is not None else self._hold()).append(pub)
            return None
        if pub.epoch != self.epoch:
            if self.offset:
                self._lost(pub.epoch, pub.offset - 1)
            else:  # nothing received yet: any epoch follows (its first publication, or a gap)
                self.epoch = pub.epoch
                return self._deliver(pub)
        elif pub.offset <= self.offset:
            self.duplicates += 1
            return None
        elif pub.offset > self.offset + 1:
            self._held = [pub]
            return pub.offset - 1
        self._accept(pub)
        return None

    def _accept(self, pub: Publication) -> None:
        self.offset = pub.offset
        self._inbox.put(pub)

    def _event(self, event: Join | Leave) -> None:
        self._events.put(event)

    def _hold(self) -> list[Publication]:
        """Buffer publications (and keep those already buffered) until :meth:`_release`."""
        if self._held is None:
            self._held = []
        return self._held

    def _release(self) -> int | None:
        """Stop buffering and deliver the buffer; like :meth:`_deliver`, return the
        end of a gap found on the way (holding what follows it), else None."""
        held, self._held = self._held, None
        if held is None:
            return None
        for i, pub in enumerate(held):
            gap = self._deliver(pub)
            if gap is not None:
                self._hold().extend(held[i + 1 :])
                return gap
        return None

    def _reset(self) -> None:
        """The connection is gone: forget the buffer; the reconnect recovers it."""
        if self.epoch is not None:
            self._held = None

    def _apply(self, reply: Subscribed) -> None:
        """Take the position of a ``subscribed`` (publications it recovers follow it)."""
        if self.epoch is None:
            self.epoch, self.offset = reply.epoch, reply.offset
        elif reply.recovered and (reply.epoch == self.epoch or not self.offset):
            self.epoch, self.recovered = reply.epoch, True  # offset 0: any epoch follows
        elif self.recover:
            self._lost(reply.epoch, reply.offset)
        else:  # recovery not wanted: just go on from the current top
            self.epoch, self.offset, self.recovered = reply.epoch, reply.offset, False

    def _fill(self, page: HistoryReply | None, upto: int) -> int | None:
        """Deliver what ``page`` (read after ``offset``) holds up to ``upto``, report
        the rest as lost, then :meth:`_release`."""
        if page is not None and page.epoch == self.epoch:
            for pub in page.messages:
                if pub.offset > upto or pub.offset > self.offset + 1:
                    break
                if pub.offset == self.offset + 1:
                    self._accept(pub)
        if self.offset < upto:
            assert self.epoch is not None
            self._lost(self.epoch, upto)
        return self._release()

    def _lost(self, epoch: str, offset: int) -> None:
        event = RecoveryFailed(self.channel, epoch, offset, self.epoch or "", self.offset)
        log.warning(
            "channel %r: publications after %s:%d could not be recovered; going on from %s:%d",
            self.channel,
            self.epoch,
            self.offset,
            epoch,
            offset,
        )
        self.epoch, self.offset, self.recovered = epoch, offset, False
        self._events.put(event)

    def _end(self, exc: ConnectionClosed) -> None:
        self._held = None
        self._inbox.close(exc)
        self._events.close(exc)
