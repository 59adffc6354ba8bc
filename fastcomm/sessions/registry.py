"""This node's live sessions (by id and by user), and their records in the store.

The records live in the broker's :class:`~fastcomm.sessions.record.SessionStore`,
shared by every node: a client resumes on whichever node it reaches. This
registry indexes the sessions live here and writes their records: before the
``welcome`` (:meth:`SessionRegistry.open`), at each checkpoint of the node's
sweep, and with the exact positions when a session is detached.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any, NamedTuple

from fastcomm.sessions.record import SessionRecord, SessionStore
from fastcomm.sessions.session import Session

__all__ = ["Opened", "SessionRegistry"]


class Opened(NamedTuple):
    """What :meth:`SessionRegistry.open` gives: the session, whether it was
    resumed, and the node it was live on when claimed ("" if none)."""

    session: Session
    resumed: bool
    taken_from: str


class SessionRegistry:
    """Live sessions of one node, by id and by user; their records in ``store``.

    ``ttl`` is how long a record outlives its last write (``session_ttl``; 0
    keeps none: nothing is resumable); ``node`` is this node's uid, written in
    the records of its live sessions. A user may hold many live sessions.
    """

    def __init__(self, store: SessionStore, ttl: float, node: str = "") -> None:
        self.store = store
        self.ttl = ttl
        self.node = node
        self.live: dict[str, Session] = {}
        self.by_user: dict[str, set[Session]] = {}

    def __len__(self) -> int:
        return len(self.live)

    def new(self, user: str | None, meta: Any) -> Session:
        """A new session, not live yet (see :meth:`open`)."""
        return Session(secrets.token_urlsafe(12), user, meta, secrets.token_urlsafe(24))

    async def open(self, fresh: Session, resume_token: str | None) -> Opened:
        """The session a new connection gets, its record written: the one of
        ``resume_token`` if that resumes for ``fresh``'s user (:meth:`claim`), else
        ``fresh`` (from :meth:`new`). It is not live until :meth:`add`."""
        if resume_token:
            claimed = await self.claim(fresh.user, fresh.meta, resume_token)
            if claimed is not None:
                return claimed
        await self.save(fresh)
        return Opened(fresh, False, "")

    async def claim(self, user: str | None, meta: Any, resume_token: str) -> Opened | None:
        """Take the record of ``resume_token`` if it is ``user``'s and within its
        TTL (one use per token): its session with ``meta`` and a new token, whose
        record is written; None if the token does not resume."""
        if self.ttl <= 0:
            return None
        record = await self.store.claim(resume_token, user)
        if record is None:
            return None
        session = Session.restore(record, meta, secrets.token_urlsafe(24))
        await self.save(session)
        return Opened(session, True, record.node)

    async def save(
        self, session: Session, positions: dict[str, tuple[str, int]] | None = None
    ) -> None:
        """Write the record of ``session`` as live on this node (with ``positions``,
        default its own)."""
        if self.ttl > 0:
            record = session.record(self.node, positions)
            await self.store.save(session.resume_token, record, self.ttl)

    def add(self, session: Session) -> None:
        self.live[session.id] = session
        if session.user is not None:
            self.by_user.setdefault(session.user, set()).add(session)

    def remove(self, session: Session) -> bool:
        """Take ``session`` out of the live indexes; False if it was not live."""
        session.conn = None
        if self.live.get(session.id) is not session:
            return False
        del self.live[session.id]
        if session.user is not None:
            peers = self.by_user.get(session.user)
            if peers is not None:
                peers.discard(session)
                if not peers:
                    del self.by_user[session.user]
        return True

    async def detach(self, session: Session) -> None:
        """The session's connection is gone: write its record with the exact
        positions, resumable on any node for ``ttl`` (if it was not claimed or
        revoked meanwhile). Call after :meth:`remove`."""
        if self.ttl > 0:
            record = session.record("")
            await self.store.checkpoint([(session.resume_token, record)], self.ttl)

    async def revoke(self, session: Session) -> None:
        """Forget ``session`` entirely: it is no longer live nor resumable."""
        self.remove(session)
        await self.store.revoke(session.resume_token)

    async def checkpoint(self, records: list[tuple[str, SessionRecord]]) -> None:
        """Keep the records of live sessions (with their current positions)."""
        if self.ttl > 0 and records:
            await self.store.checkpoint(records, self.ttl)

    def stored(self) -> int | None:
        """Records in the store, when it can tell (live sessions' included)."""
        return self.store.count()

    def get(self, session_id: str) -> Session | None:
        return self.live.get(session_id)

    def of_user(self, user: str) -> Iterator[Session]:
        return iter(tuple(self.by_user.get(user, ())))
