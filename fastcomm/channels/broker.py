"""The broker interface: where publications, history and presence live.

A broker is the shared state of channels: it numbers publications, keeps
bounded history, holds presence lists and carries publications and presence
events to every node subscribed to a channel. Several nodes may share one
broker: each calls :meth:`Broker.start` once with its delivery callback and
gets a :class:`BrokerHandle`, its own view of the broker. The hub (local
fan-out) and the routes talk to the broker only through that handle, so the
embedded :class:`~fastcomm.channels.memory.MemoryBroker` can be swapped for a
Redis backend without touching them. A node closes its handle, never the
broker it was given (whoever made the broker closes it).

Contract common to every method:

- Methods are coroutines; they raise any exception on backend failure (the
  routes answer ``unavailable``). They never raise for an unknown channel.
- Offsets start at 1 and grow by exactly one per publication of a channel
  within an epoch. Offset 0 means "nothing published yet in this epoch".
- The epoch is an opaque string that changes whenever the numbering restarts
  (history lost: backend restart, stream expired). Two positions are
  comparable only within the same epoch.
- Calls that change subscription or presence state take effect in the order
  they are *made* (a backend issues the command before its first suspension,
  or serializes per channel): ``subscribe`` then ``unsubscribe`` of a channel
  leaves it unsubscribed, the reverse leaves it subscribed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from fastcomm.protocol.channel_messages import Join, Leave, Member, Publication
from fastcomm.sessions.record import SessionStore

__all__ = [
    "Broker",
    "BrokerHandle",
    "Control",
    "Deliver",
    "Event",
    "HistoryPage",
    "StreamPosition",
]

Event = Publication | Join | Leave
"""What a broker delivers to a subscribed node: a publication or a presence event."""

Deliver = Callable[[Event], None]
"""The node's callback for events of its subscribed channels, given once to
:meth:`Broker.start`. Synchronous, must not raise."""


Control = Callable[[bytes], None]
"""The node's callback for control messages sent to it by other nodes
(:meth:`BrokerHandle.send`), given to :meth:`Broker.start`. Must not raise."""


class StreamPosition(NamedTuple):
    """The top of a channel's stream: ``offset`` of its last publication in ``epoch``."""

    epoch: str
    offset: int


class HistoryPage(NamedTuple):
    """A slice of a channel's history and the stream top at the time it was read.

    ``publications`` are in increasing offset order and contiguous. ``offset``
    is the stream top read atomically with them, so a caller can tell whether
    the slice covers everything after a given offset.
    """

    epoch: str
    offset: int
    publications: list[Publication]


class Channels(Protocol):
    """What every node sees of a broker's channels (shared by all nodes), and the
    session records they share (``sessions``)."""

    @property
    def sessions(self) -> SessionStore:
        """The session records of every node sharing the broker."""
        ...

    async def publish(
        self,
        channel: str,
        data: Any,
        *,
        history_size: int,
        history_ttl: float,
        history_bytes: int = 0,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        """Append a publication and deliver it; return its position.

        The publication gets the next offset of the channel. It is stored in
        history (keeping at most ``history_size`` entries, each for at most
        ``history_ttl`` seconds, and, when ``history_bytes`` is above 0, at most
        that many bytes of data, oldest first; a size or TTL of 0 disables
        history) *before* it is delivered to subscribed nodes, so a reader that
        subscribes first and then reads history misses nothing. ``data`` is any
        msgspec-encodable value; a networked backend serializes it (MessagePack)
        itself.

        With ``idempotency_key``, a publish to ``channel`` with a key used there
        within the broker's idempotency window (5 minutes by default) stores and
        delivers nothing and returns the position of the first one: a client that
        retries after a timeout does not publish twice.
        """
        ...

    async def publish_event(self, channel: str, event: Join | Leave) -> None:
        """Deliver a presence event to subscribed nodes; it is not numbered nor stored."""
        ...

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        """Read retained publications of ``channel``.

        With ``since``: those with an offset greater than ``since``, oldest
        first, at most ``limit`` of them (the first ``limit``). Without
        ``since``: the most recent ``limit`` ones, oldest first. ``limit``
        None means all retained; 0 returns none (just the position). Entries
        older than their TTL are never returned.
        """
        ...

    async def position(self, channel: str) -> StreamPosition:
        """The current top of the channel's stream (offset 0 if nothing published).

        The epoch returned stays the epoch of the channel's next publications
        unless history is lost in between; a stream that had no publication may
        start its first one in another epoch (offset 0 is "nothing missed" in
        any epoch).
        """
        ...

    async def presence_add(self, channel: str, member: Member, ttl: float = 0.0) -> None:
        """Add (or replace) ``member`` in the channel's presence, keyed by its session.
        With ``ttl`` > 0 the member expires that many seconds later unless kept
        (:meth:`presence_keep`): a node that dies leaves no member behind for long.
        No ``leave`` event is delivered for an expired member."""
        ...

    async def presence_remove(self, channel: str, session: str) -> None:
        """Remove a session from the channel's presence; no error if absent."""
        ...

    async def presence_leave(self, session: str, channels: list[str]) -> None:
        """Remove ``session`` from the presence of every channel in ``channels``, in
        one call (a connection that goes leaves all its channels at once)."""
        ...

    async def presence_keep(self, present: list[tuple[str, str]], ttl: float) -> None:
        """Push back to ``ttl`` seconds from now the expiry of each ``(channel,
        session)`` still a member (one call for a batch of a node's live members);
        pairs that are not members are ignored."""
        ...

    async def presence(self, channel: str) -> list[Member]:
        """Members present in the channel, in no particular order."""
        ...


class BrokerHandle(Channels, Protocol):
    """One node's view of a broker: the shared channels plus this node's subscriptions."""

    async def subscribe(self, channel: str) -> None:
        """Subscribe this node to ``channel``: from the moment this returns, every
        publication and presence event of the channel is passed to the node's
        ``deliver``, in offset order and each exactly once. Subscribing an
        already subscribed channel does nothing."""
        ...

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` to this node; no error if not subscribed."""
        ...

    @property
    def reconnects(self) -> int:
        """Times the backend came back after an outage. After each, what the node
        keeps there (its presence members, its sessions' records) is written again:
        the backend may have come back empty."""
        ...

    async def announce(self, info: bytes, ttl: float) -> None:
        """List this node in the node registry with ``info`` for ``ttl`` seconds (a
        node's heartbeat: it announces again before that time is up)."""
        ...

    async def nodes(self) -> dict[str, bytes]:
        """The nodes listed and not expired, by uid, with their last ``info``."""
        ...

    async def send(self, data: bytes, node: str | None = None) -> None:
        """Hand ``data`` to the ``control`` callback of the node ``node`` (by uid) or,
        with None, of every other node that has announced itself: at most once,
        later than this call (never inside it), in the order sent between two nodes,
        and in no particular order with publications. Nothing happens for a node
        that is not there."""
        ...

    async def close(self) -> None:
        """Drop this node's subscriptions and registry entry; the broker stays open."""
        ...


class Broker(Channels, Protocol):
    """Storage and transport of channel publications, history and presence."""

    def start(
        self, deliver: Deliver, *, uid: str = "", control: Control | None = None
    ) -> BrokerHandle:
        """A handle for one node: events of the channels it subscribes go to
        ``deliver``, control messages addressed to it (by ``uid``; a random one if
        empty) or broadcast go to ``control``. Called once by each node sharing the
        broker (no I/O: a networked broker connects on first use)."""
        ...

    async def close(self) -> None:
        """Release connections and timers; the broker and its handles are unusable
        afterwards."""
        ...
