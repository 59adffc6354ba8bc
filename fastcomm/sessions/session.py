"""A session: who is connected, and what survives a disconnect for resuming."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["Session"]


class Session:
    """One client session.

    ``conn`` is the live connection, or None while the session is detached
    (disconnected but resumable until ``expires``). ``positions`` maps each
    subscribed channel to ``(epoch, last delivered offset)``; it is what a
    resume restores. While detached, the channels that received nothing are
    kept apart in ``quiet``, their names joined by spaces (which no channel
    name holds): one string instead of a dict entry and a string each.
    """

    __slots__ = ("conn", "expires", "id", "meta", "positions", "quiet", "resume_token", "user")

    def __init__(self, sid: str, user: str | None, meta: Any, resume_token: str) -> None:
        self.id = sid
        self.user = user
        self.meta = meta
        self.resume_token = resume_token
        self.conn: Connection | None = None
        self.positions: dict[str, tuple[str, int]] = {}
        self.quiet = ""
        self.expires = 0.0

    def __repr__(self) -> str:
        state = "live" if self.conn is not None else "detached"
        return f"<Session {self.id} user={self.user!r} {state}>"
