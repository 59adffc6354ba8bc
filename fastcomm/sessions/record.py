"""What a session store keeps of a session, and the store's interface.

A session's record is what any node needs to resume it: its id, user,
metadata and the position of each subscribed channel. Nodes sharing a broker
share its :class:`SessionStore`, so a client resumes on whichever node it
reaches. The record of a live session is written before its ``welcome`` and
kept fresh by its node's sweep (:meth:`SessionStore.checkpoint`, positions
included); a clean disconnect writes the exact positions. A node that dies
writes nothing: its sessions resume from their last checkpoint.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

__all__ = ["SessionRecord", "SessionStore", "compact"]

Position = tuple[str, int]


class SessionRecord(msgspec.Struct, array_like=True):
    """A resumable session.

    ``positions`` maps each subscribed channel to ``(epoch, last delivered
    offset)``; the channels that received nothing are in ``quiet``, their
    names joined by spaces (which no channel name holds): one string instead
    of a dict entry each. ``node`` is the uid of the node the session is live
    on ("" once it was detached cleanly). ``meta`` is any msgspec-encodable
    value.
    """

    id: str
    user: str | None
    meta: Any
    positions: dict[str, Position]
    quiet: str = ""
    node: str = ""

    def all_positions(self) -> dict[str, Position]:
        """Every subscribed channel with its position (quiet ones at offset 0)."""
        positions = dict(self.positions)
        if self.quiet:
            positions.update(dict.fromkeys(self.quiet.split(" "), ("", 0)))
        return positions


def compact(positions: dict[str, Position]) -> tuple[dict[str, Position], str]:
    """``(positions, quiet)`` for a record: channels at offset 0 joined in ``quiet``."""
    quiet = [name for name, (_, offset) in positions.items() if offset == 0]
    if not quiet:
        return dict(positions), ""
    kept = {name: at for name, at in positions.items() if at[1] != 0}
    return kept, " ".join(quiet)


class SessionStore(Protocol):
    """Session records by resume token, shared by the nodes of a broker.

    A record lives ``ttl`` seconds after it was last written or kept. Every
    method is a coroutine and raises on backend failure. ``local`` is True for a
    store in this process whose coroutines never wait (the node then welcomes a
    connection without a turn of the event loop).
    """

    local: bool

    async def save(self, token: str, record: SessionRecord, ttl: float) -> None:
        """Write ``record`` under ``token`` (created or replaced)."""
        ...

    async def checkpoint(self, records: list[tuple[str, SessionRecord]], ttl: float) -> None:
        """Replace each record that still exists under its token and give it ``ttl``
        more seconds, in one call; tokens with no record (claimed, revoked, expired)
        are ignored: a checkpoint never brings a record back."""
        ...

    async def claim(self, token: str, user: str | None) -> SessionRecord | None:
        """Atomically take (read and delete) the record of ``token`` if it is
        ``user``'s and within its TTL; None otherwise. Another user's record stays."""
        ...

    async def revoke(self, token: str) -> None:
        """Delete the record of ``token``; no error if there is none."""
        ...

    def count(self) -> int | None:
        """How many records the store holds, if it can tell at no cost (else None)."""
        ...
