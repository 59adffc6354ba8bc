"""Index of live sessions (by id and by user) and of resumable detached ones."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from fastcomm.sessions.session import Session

__all__ = ["SessionRegistry"]


class SessionRegistry:
    """Live sessions by id and by user, plus detached sessions kept for ``ttl``.

    Contract: :meth:`attach` returns a live session (resumed or new); a
    resumed session gets a new resume token (the one it was resumed with stops
    working). :meth:`swap` resumes one in place of a connection's new session.
    :meth:`detach` removes it from the live indexes at once and keeps a
    resumable record only if ``ttl > 0``, at most ``max_detached`` of them (the
    oldest is dropped first); :meth:`expire` drops records whose time is up. A
    user may hold many live sessions.
    """

    def __init__(self, ttl: float, clock: Any = time.monotonic, max_detached: int = 10_000) -> None:
        self.ttl = ttl
        self.max_detached = max_detached
        self.clock = clock
        self.live: dict[str, Session] = {}
        self.by_user: dict[str, set[Session]] = {}
        self._detached: dict[str, Session] = {}  # resume token -> session

    def __len__(self) -> int:
        return len(self.live)

    @property
    def detached_count(self) -> int:
        return len(self._detached)

    def attach(self, user: str | None, meta: Any, resume_token: str | None) -> tuple[Session, bool]:
        """Return ``(session, resumed)``: the detached session for ``resume_token``
        if it is still within its TTL and belongs to the same user, else a new one."""
        session = self._claim(user, meta, resume_token) if resume_token else None
        resumed = session is not None
        if session is None:
            session = Session(secrets.token_urlsafe(12), user, meta, secrets.token_urlsafe(24))
        self._add(session)
        return session, resumed

    def swap(self, fresh: Session, resume_token: str) -> Session | None:
        """Resume the detached session of ``resume_token`` in place of the live
        ``fresh`` one (a ``resume`` request on a new connection): same rules as
        :meth:`attach`, for ``fresh``'s user. On success ``fresh`` is forgotten
        entirely (it was never detached, so it can never be resumed) and the
        resumed session, with a new resume token, takes its connection and meta.
        Returns None, having changed nothing but dropping an expired record, when
        the token does not resume (or ``fresh`` is no longer live)."""
        if not resume_token or self.live.get(fresh.id) is not fresh:
            return None
        session = self._claim(fresh.user, fresh.meta, resume_token)
        if session is None:
            return None
        conn = fresh.conn
        self._remove(fresh)
        session.conn = conn
        self._add(session)
        return session

    def _claim(self, user: str | None, meta: Any, resume_token: str) -> Session | None:
        """Take the detached session of ``resume_token`` if it is ``user``'s and
        within its TTL, giving it ``meta`` and a new token (one use per token).
        Another user's token stays resumable by its owner; an expired one is dropped."""
        candidate = self._detached.get(resume_token)
        if candidate is None or candidate.user != user:
            return None
        del self._detached[resume_token]
        if candidate.expires <= self.clock():
            return None
        candidate.meta = meta
        candidate.resume_token = secrets.token_urlsafe(24)
        return candidate

    def _add(self, session: Session) -> None:
        self.live[session.id] = session
        if session.user is not None:
            self.by_user.setdefault(session.user, set()).add(session)

    def _remove(self, session: Session) -> bool:
        """Take ``session`` out of the live indexes; False if it was not live."""
        session.conn = None
        if self.live.pop(session.id, None) is None:
            return False
        if session.user is not None:
            peers = self.by_user.get(session.user)
            if peers is not None:
                peers.discard(session)
                if not peers:
                    del self.by_user[session.user]
        return True

    def detach(self, session: Session) -> None:
        """Remove a session from the live indexes; keep it resumable for ``ttl``."""
        if not self._remove(session):
            return
        if self.ttl > 0 and self.max_detached > 0:
            detached = self._detached
            while len(detached) >= self.max_detached:
                del detached[next(iter(detached))]  # the oldest record goes first
            session.expires = self.clock() + self.ttl
            detached[session.resume_token] = session

    def revoke(self, session: Session) -> None:
        """Forget a session entirely: it can no longer be resumed."""
        self.detach(session)
        self._detached.pop(session.resume_token, None)

    def expire(self) -> list[Session]:
        """Drop detached sessions whose TTL passed; return them."""
        now = self.clock()
        gone = [s for s in self._detached.values() if s.expires <= now]
        for session in gone:
            del self._detached[session.resume_token]
        return gone

    def get(self, session_id: str) -> Session | None:
        return self.live.get(session_id)

    def of_user(self, user: str) -> Iterator[Session]:
        return iter(tuple(self.by_user.get(user, ())))
