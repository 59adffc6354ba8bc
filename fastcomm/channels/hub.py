"""The hub: this node's index of channel -> subscribed connections, and fan-out.

A publication from the broker is encoded once per codec and written with
``send_encoded`` to every live subscriber (:meth:`Hub.deliver`, synchronous,
no per-subscriber allocation). A subscriber that cannot keep up is closed by
its own :class:`~fastcomm.sessions.connection.Connection` (4008) when its
bounded buffer overflows; the hub never waits for anyone.

Last delivered offsets are tracked per channel, not per subscriber: every
live subscriber of a channel has been sent every publication up to the
channel's position (``ChannelState.epoch``/``offset``), so its position is
the channel's. Only a subscriber whose send failed (closed) gets its own
record, written once.

Each publication must be the next one of the channel's epoch (a position at
offset 0 takes offset 1 of any epoch). One at or below the position is a late
duplicate and skipped. One beyond the next is a gap: the channel holds what
the broker delivers while the missing ones are read from history, then
delivers them in order; if history no longer has them (or the epoch
changed), every live subscriber is pushed ``subscribed`` with ``"id": null``
and ``"recovered": false`` at the new position, the signal a resume uses,
and delivery goes on from there. Nothing is skipped silently.

A subscription being set up is a :class:`Joiner`, registered in its channel
(:meth:`Hub.reserve`) from the moment it is accepted: the channel's
``pending`` is the one index of subscriptions not live yet. It buffers what
the broker delivers until its history is sent, then filters duplicates until
the live stream has caught up with what it was sent, then goes live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastcomm.channels.broker import Broker, BrokerHandle, Control, Event
from fastcomm.channels.gaps import repair
from fastcomm.channels.joiner import Joiner, Position, follows
from fastcomm.channels.state import ChannelState
from fastcomm.protocol.channel_messages import Publication

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["ChannelState", "Hub", "Joiner", "Position"]

log = logging.getLogger("fastcomm.channels")

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Hub:
    """Channel -> subscribers on this node; subscribes the node to the broker as needed.

    ``broker`` is this node's handle on the (possibly shared) broker, taken with
    :meth:`deliver` as its one delivery callback (and ``uid``/``control`` for
    the node's control messages, :meth:`Broker.start`). ``spawn`` runs background
    coroutines (the router's tracked tasks).
    """

    def __init__(
        self, broker: Broker, spawn: Spawn, *, uid: str = "", control: Control | None = None
    ) -> None:
        self.broker: BrokerHandle = broker.start(self.deliver, uid=uid, control=control)
        self._spawn = spawn
        self.channels: dict[str, ChannelState] = {}
        self.gaps_repaired = 0
        self.gaps_lost = 0

    def count(self) -> int:
        """Channels with at least one subscriber (live or being set up) on this node."""
        return len(self.channels)

    def subscribers(self, channel: str) -> int:
        state = self.channels.get(channel)
        return 0 if state is None else len(state)

    def position(self, conn: Connection, channel: str) -> Position | None:
        """The last publication sent to ``conn`` on ``channel`` (None if unknown)."""
        state = self.channels.get(channel)
        if state is None:
            return None
        group = state.groups.get(conn.codec)
        if group is not None and conn in group:
            return _sent(state, conn)
        entry = state.pending.get(conn)
        return None if entry is None else entry.position

    def joiner(self, conn: Connection, channel: str) -> Joiner | None:
        """The subscription of ``conn`` to ``channel`` being set up, if any."""
        state = self.channels.get(channel)
        return None if state is None else state.pending.get(conn)

    # -- fan-out (hot path) ----------------------------------------------------
    def deliver(self, event: Event) -> None:
        """The broker's callback: send ``event`` to the channel's subscribers."""
        state = self.channels.get(event.channel)
        if state is None:
            return
        if state.held is not None:
            state.held.append(event)
        else:
            self.apply(state, event)

    def apply(self, state: ChannelState, event: Event) -> None:
        if type(event) is Publication:
            epoch, offset = state.epoch, state.offset
            if event.epoch == epoch and event.offset <= offset:
                pass  # a late duplicate: every live subscriber has it; catch-ups may not
            elif follows(epoch, offset, event) or not state.groups:
                if not self.fan_out(state, event):
                    return
            else:
                state.held = [event]
                self._spawn(repair(self, state, event))
                return
        else:
            for codec, conns in state.groups.items():
                data = codec.encode(event)
                for conn in conns:
                    conn.send_encoded(data)
        if state.pending:
            self.offer(state, event)

    def fan_out(self, state: ChannelState, pub: Publication) -> bool:
        epoch, offset = state.epoch, state.offset
        try:
            encoded = [(codec.encode(pub), conns) for codec, conns in state.groups.items()]
        except Exception:  # stored data is checked first; this is a last defence
            log.exception("publication %d of %r cannot be encoded", pub.offset, state.name)
            return False
        # Advance only once it can be sent: subscribers' positions stay truthful.
        state.epoch = pub.epoch
        state.offset = pub.offset
        for data, conns in encoded:
            for conn in conns:
                try:
                    sent = conn.send_encoded(data)
                except Exception:  # a broken connection must not starve the others
                    log.exception("sending to %r failed", conn)
                    sent = False
                if not sent:
                    self._stopped(state, conn, (epoch or "", offset))
        return True

    def _stopped(self, state: ChannelState, conn: Connection, position: Position) -> None:
        if state.stopped is None:
            state.stopped = {}
        state.stopped.setdefault(conn, position)

    def offer(self, state: ChannelState, event: Event) -> None:
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
    def reserve(self, channel: str, entry: Joiner) -> None:
        """Register ``entry`` as being set up on ``channel`` (synchronously: limits and
        lookups see it at once); nothing is delivered to it before :meth:`enter`."""
        state = self.channels.get(channel)
        if state is None:
            state = self.channels[channel] = ChannelState(channel)
        state.pending[entry.conn] = entry

    async def enter(self, channel: str, entry: Joiner) -> None:
        """Make sure the node is subscribed in the broker for ``entry``'s channel; from
        then on, everything the broker delivers is buffered in the entry. Raises what
        the broker raised."""
        state = self.channels.get(channel)
        if state is None or state.pending.get(entry.conn) is not entry:
            self.reserve(channel, entry)
            state = self.channels[channel]
        if state.ready is not None:  # a failed one takes its state with it: done is ready
            if not state.ready.done():
                await asyncio.shield(state.ready)
            return
        ready = state.ready = asyncio.get_running_loop().create_future()
        try:
            await self.broker.subscribe(channel)
        except BaseException as exc:
            if self.channels.get(channel) is state:
                del self.channels[channel]
            if isinstance(exc, Exception):
                ready.set_exception(exc)
                ready.exception()  # waiters re-raise it; no "never retrieved" warning
            else:
                ready.cancel()
            raise
        ready.set_result(None)

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
        if not state.groups and state.held is None:
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
            position, joined = _sent(state, conn), True
            if state.stopped:
                state.stopped.pop(conn, None)
        else:
            entry = state.pending.pop(conn, None)
            if entry is None:
                return None, False
            position, joined = entry.position, entry.buffer is None
        if not state.groups and not state.pending:
            if state.ready is None:  # never subscribed in the broker
                del self.channels[channel]
            else:
                self._spawn(self._release(state))
        return position, joined

    async def _release(self, state: ChannelState) -> None:
        assert state.ready is not None
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


def _sent(state: ChannelState, conn: Connection) -> Position:
    """The last publication sent to ``conn``, a live subscriber of ``state``'s channel:
    the channel's, unless its send failed (then its own, kept at the failure)."""
    stopped = state.stopped.get(conn) if state.stopped else None
    return stopped or (state.epoch or "", state.offset)
