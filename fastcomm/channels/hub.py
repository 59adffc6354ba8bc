"""The hub: this node's index of channel -> subscribed connections, and fan-out.

A publication from the broker is encoded once per codec and written with
``send_encoded`` to every live subscriber (:meth:`Hub.deliver`, synchronous,
no per-subscriber allocation). A subscriber that cannot keep up is closed by
its own :class:`~fastcomm.sessions.connection.Connection` (4008) when its
bounded buffer overflows; the hub never waits for anyone.

Last delivered offsets are tracked per channel, not per subscriber: every
live subscriber of a channel has been sent every publication up to the
channel's position (``ChannelState.epoch``/``offset``), so its position is
the channel's.
Only a subscriber whose send failed (closed) gets its own record, written
once. A subscription being set up is a :class:`Joiner`: it buffers what the
broker delivers until its history is sent, then filters duplicates until the
live stream has caught up with what it was sent, then goes live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastcomm.channels.broker import Broker, Event
from fastcomm.protocol.channel_messages import Publication

if TYPE_CHECKING:
    from fastcomm.protocol.codec import Codec
    from fastcomm.sessions.connection import Connection

__all__ = ["ChannelState", "Hub", "Joiner", "Position"]

log = logging.getLogger("fastcomm.channels")

Position = tuple[str, int]
"""``(epoch, offset)`` of the last publication delivered to a subscriber."""

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Joiner:
    """A subscription of ``conn`` that is not live yet.

    ``epoch``/``last`` is what the client has been sent (None before
    ``subscribed``, unless restored from a session). While ``buffer`` is a
    list, events are kept there; once the history is sent it is None and
    events are sent directly, skipping publications already sent.
    ``cancelled`` is set when the connection went away or gave up the channel.
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


class ChannelState:
    """One channel with subscribers on this node.

    ``groups`` holds live subscribers by codec (one encoding per group);
    ``epoch``/``offset`` is the last publication fanned out (epoch None until
    the first); ``stopped`` the positions of live subscribers whose send
    failed; ``ready`` resolves once the broker subscription is in place.
    """

    __slots__ = ("epoch", "groups", "name", "offset", "pending", "ready", "stopped")

    def __init__(self, name: str, ready: asyncio.Future[None]) -> None:
        self.name = name
        self.groups: dict[Codec, dict[Connection, None]] = {}
        self.pending: dict[Connection, Joiner] = {}
        self.stopped: dict[Connection, Position] | None = None
        self.epoch: str | None = None
        self.offset = 0
        self.ready = ready

    def __len__(self) -> int:
        return sum(map(len, self.groups.values())) + len(self.pending)

    def caught_up(self, entry: Joiner) -> bool:
        """True when ``entry`` has been sent exactly what this channel fanned out: not
        less (it would miss some), not more (late deliveries must still be filtered)."""
        return self.epoch is not None and entry.epoch == self.epoch and entry.last == self.offset


class Hub:
    """Channel -> subscribers on this node; subscribes the node to the broker as needed.

    ``spawn`` runs background coroutines (the router's tracked tasks).
    """

    def __init__(self, broker: Broker, spawn: Spawn) -> None:
        self.broker = broker
        self._spawn = spawn
        self.channels: dict[str, ChannelState] = {}

    def count(self) -> int:
        """Channels with at least one subscriber (live or catching up) on this node."""
        return len(self.channels)

    def subscribers(self, channel: str) -> int:
        state = self.channels.get(channel)
        return 0 if state is None else len(state)

    # -- fan-out (hot path) ----------------------------------------------------
    def deliver(self, event: Event) -> None:
        """The broker's callback: send ``event`` to the channel's subscribers."""
        state = self.channels.get(event.channel)
        if state is None:
            return
        if type(event) is Publication:
            epoch, offset = state.epoch, state.offset
            # A publication at or below the channel's position was already sent to every
            # live subscriber from history (a late delivery): only catch-ups may need it.
            if event.offset > offset or event.epoch != epoch:
                try:
                    encoded = [
                        (codec.encode(event), conns) for codec, conns in state.groups.items()
                    ]
                except Exception:  # stored data is checked first; this is a last defence
                    log.exception(
                        "publication %d of %r cannot be encoded", event.offset, state.name
                    )
                    return
                # Advance only once it can be sent: subscribers' positions stay truthful.
                state.epoch = event.epoch
                state.offset = event.offset
                for data, conns in encoded:
                    for conn in conns:
                        try:
                            sent = conn.send_encoded(data)
                        except Exception:  # a broken connection must not starve the others
                            log.exception("sending to %r failed", conn)
                            sent = False
                        if not sent:
                            self._stopped(state, conn, (epoch or "", offset))
        else:
            for codec, conns in state.groups.items():
                data = codec.encode(event)
                for conn in conns:
                    conn.send_encoded(data)
        if state.pending:
            self._offer(state, event)

    def _stopped(self, state: ChannelState, conn: Connection, position: Position) -> None:
        if state.stopped is None:
            state.stopped = {}
        state.stopped.setdefault(conn, position)

    def _offer(self, state: ChannelState, event: Event) -> None:
        ready = []
        for entry in state.pending.values():
            entry.offer(event)
            if entry.buffer is None and state.caught_up(entry):
                ready.append(entry)
        for entry in ready:
            self._promote(state, entry)

    def _promote(self, state: ChannelState, entry: Joiner) -> None:
        conn = entry.conn
        del state.pending[conn]
        group = state.groups.get(conn.codec)
        if group is None:
            group = state.groups[conn.codec] = {}
        group[conn] = None

    # -- membership --------------------------------------------------------------
    async def enter(self, channel: str, entry: Joiner) -> None:
        """Register ``entry`` as catching up on ``channel``; return once the node
        is subscribed in the broker. From then on, everything the broker
        delivers is buffered in the entry. Raises what the broker raised."""
        state = self.channels.get(channel)
        if state is not None:
            state.pending[entry.conn] = entry
            if not state.ready.done():
                await asyncio.shield(state.ready)
            return
        state = ChannelState(channel, asyncio.get_running_loop().create_future())
        self.channels[channel] = state
        state.pending[entry.conn] = entry
        try:
            await self.broker.subscribe(channel, self.deliver)
        except BaseException as exc:
            if self.channels.get(channel) is state:
                del self.channels[channel]
            if isinstance(exc, Exception):
                state.ready.set_exception(exc)
                state.ready.exception()  # waiters re-raise it; no "never retrieved" warning
            else:
                state.ready.cancel()
            raise
        state.ready.set_result(None)

    def go_live(self, channel: str, entry: Joiner) -> None:
        """Called once the entry's history is sent: flush its buffer (skipping
        what was already sent), then make it live if nothing is left to filter."""
        buffer, entry.buffer = entry.buffer, None
        if buffer:
            for event in buffer:
                entry.offer(event)
        state = self.channels.get(channel)
        if state is None or state.pending.get(entry.conn) is not entry or entry.epoch is None:
            return
        if not state.groups:
            # No live subscriber to keep in step with: the channel's position becomes the
            # entry's, and later deliveries at or below it are skipped as already sent.
            state.epoch, state.offset = entry.epoch, entry.last
        if state.caught_up(entry):
            self._promote(state, entry)

    def leave(self, conn: Connection, channel: str) -> tuple[Position | None, bool]:
        """Remove ``conn`` from ``channel``; return ``(position, joined)``.

        ``position`` is the last publication delivered to it (None if it was
        never sent ``subscribed``); ``joined`` is True if it was live or past
        its history. The node's broker subscription is released when the
        channel has no subscriber left.
        """
        state = self.channels.get(channel)
        if state is None:
            return None, False
        position: Position | None
        group = state.groups.get(conn.codec)
        if group is not None and conn in group:
            del group[conn]
            if not group:
                del state.groups[conn.codec]
            stopped = state.stopped.pop(conn, None) if state.stopped else None
            position = stopped or (state.epoch or "", state.offset)
            joined = True
        else:
            entry = state.pending.pop(conn, None)
            if entry is None:
                return None, False
            position, joined = entry.position, entry.buffer is None
        if not state.groups and not state.pending:
            self._spawn(self._release(state))
        return position, joined

    async def _release(self, state: ChannelState) -> None:
        if not state.ready.done():
            try:
                await asyncio.shield(state.ready)
            except Exception:  # noqa: BLE001 - the subscription failed; state is already gone
                return
        name = state.name
        if state.groups or state.pending or self.channels.get(name) is not state:
            return  # someone joined again meanwhile
        del self.channels[name]
        try:
            await self.broker.unsubscribe(name)
        except Exception:
            log.exception("unsubscribing the node from channel %r failed", name)
