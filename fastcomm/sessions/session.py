"""A live session: who is connected, and what its record keeps for resuming."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastcomm.sessions.record import SessionRecord, compact

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["Session"]


class Session:
    """One client session on this node.

    ``conn`` is its connection (None once it is gone). ``positions`` maps each
    subscribed channel to ``(epoch, offset)``: the position it was subscribed
    at while it is live, the last delivered offset once it is detached; it is
    what a resume restores (:meth:`record`, the session's
    :class:`~fastcomm.sessions.record.SessionRecord`).
    """

    __slots__ = ("conn", "id", "meta", "positions", "resume_token", "user")

    def __init__(self, sid: str, user: str | None, meta: Any, resume_token: str) -> None:
        self.id = sid
        self.user = user
        self.meta = meta
        self.resume_token = resume_token
        self.conn: Connection | None = None
        self.positions: dict[str, tuple[str, int]] = {}

    @classmethod
    def restore(cls, record: SessionRecord, meta: Any, resume_token: str) -> Session:
        """The session of a claimed record, with new ``meta`` and token."""
        session = cls(record.id, record.user, meta, resume_token)
        session.positions = record.all_positions()
        return session

    def record(
        self, node: str, positions: dict[str, tuple[str, int]] | None = None
    ) -> SessionRecord:
        """This session's record, live on ``node`` ("": detached), with ``positions``
        (default: :attr:`positions`)."""
        kept, quiet = compact(self.positions if positions is None else positions)
        return SessionRecord(self.id, self.user, self.meta, kept, quiet, node)

    def __repr__(self) -> str:
        state = "live" if self.conn is not None else "gone"
        return f"<Session {self.id} user={self.user!r} {state}>"
