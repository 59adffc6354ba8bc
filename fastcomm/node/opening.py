"""A connection's first moments: its session claimed or made, then the welcome.

The session store is shared and asynchronous, so a new connection is
welcomed only once its session's record is written (a new session) or
claimed (a resume, :meth:`SessionRegistry.open`). Messages that arrive
before that wait in a bounded buffer (:data:`MAX_WAITING` messages, at most
``max_message_size`` bytes in all; beyond it the connection is closed with
1008), then are routed in order. A ``resume`` as the first message
(browsers, which cannot set headers) claims the same way: later messages wait
until its ``resumed`` reply is sent.

A claimed session that is still live somewhere (its client came back before
the old connection was seen to be gone) is taken over: the old connection is
closed with 1008, and its node, told through the cluster, forgets it. On
this node the old connection's exact positions are used; from another node,
the record's (at most one checkpoint old: the client drops repeats by offset).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from fastcomm.errors import CloseCode, ErrorCode
from fastcomm.protocol.messages import Resume, Resumed, Welcome
from fastcomm.sessions.registry import Opened

if TYPE_CHECKING:
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection
    from fastcomm.sessions.session import Session

__all__ = ["MAX_WAITING", "NOT_FIRST", "TAKEN_OVER", "Opening"]

log = logging.getLogger("fastcomm.server")

MAX_WAITING = 64
"""Messages a connection may send before its welcome (or ``resumed``) is sent."""

NOT_FIRST = "resume must be the first message of a connection not resumed at the upgrade"
"""The ``invalid_message`` text of a ``resume`` that comes too late."""

TAKEN_OVER = "session resumed on another connection"
"""The reason of the 1008 that closes a connection whose session was taken over."""


class Opening:
    """Welcomes the connections of ``node`` and answers their ``resume`` requests."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.max_waiting_bytes = node.config.max_message_size

    # -- the welcome ------------------------------------------------------------------
    def start(self, conn: Connection, resume_token: str | None) -> None:
        """``conn`` was just attached with a new session: claim or write, then welcome."""
        conn.waiting = []
        self._run(self._welcome(conn, resume_token))

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work``: at once when the session store is in this process (it never
        waits: no task, no turn of the loop before the welcome), else as a task."""
        if not self.node.sessions.store.local:
            self.node.router.spawn(work)
            return
        try:
            work.send(None)
        except StopIteration:
            return
        work.close()
        raise RuntimeError("a local session store waited")

    async def _welcome(self, conn: Connection, resume_token: str | None) -> None:
        node, fresh = self.node, conn.session
        try:
            opened = await node.sessions.open(fresh, resume_token)
        except Exception as exc:  # noqa: BLE001 - the client is served all the same
            log.warning("session store failed; the session is not resumable: %r", exc)
            opened = Opened(fresh, False, "")
        if conn.closed:
            await self._give_back(opened, resume_token)
            return
        session = opened.session
        if opened.taken_from:
            await self._take_over(session, opened.taken_from)
        self._bind(conn, session)
        config = node.config
        conn.send(
            Welcome(
                session.id, session.resume_token, opened.resumed, config.heartbeat,
                config.max_message_size,
            )
        )  # fmt: skip
        conn.first = not opened.resumed
        for attach in node.on_attach:
            attach(conn, opened.resumed)
        self._release(conn)

    async def _give_back(self, opened: Opened, resume_token: str | None) -> None:
        """The connection went before its welcome: the client never learned the new
        token, so a claimed record goes back under the one it has."""
        sessions = self.node.sessions
        try:
            await sessions.store.revoke(opened.session.resume_token)
            if opened.resumed and resume_token:
                record = opened.session.record("")
                await sessions.store.save(resume_token, record, sessions.ttl)
        except Exception as exc:  # noqa: BLE001 - the record expires on its own
            log.warning("session store failed: %r", exc)

    def _bind(self, conn: Connection, session: Session) -> None:
        conn.session = session
        session.conn = conn
        self.node.sessions.add(session)

    def wait(self, conn: Connection, binary: bool, payload: bytes) -> None:
        """A message before the welcome: keep it for later, within bounds."""
        waiting = conn.waiting
        assert waiting is not None
        size = len(payload) + sum(len(p) for _, p in waiting)
        if len(waiting) >= MAX_WAITING or size > self.max_waiting_bytes:
            conn.close(CloseCode.POLICY_VIOLATION, "too many messages before the welcome")
            return
        waiting.append((binary, payload))

    def _release(self, conn: Connection) -> None:
        waiting, conn.waiting = conn.waiting, None
        for binary, payload in waiting or ():
            if conn.closed:
                return
            self.node.receive(conn, binary, payload)

    # -- take-over ----------------------------------------------------------------------
    async def _take_over(self, session: Session, node: str) -> None:
        """``session`` was claimed while live on ``node``: close it there."""
        local = self.node.sessions.get(session.id)
        if local is not None:
            conn = local.conn
            self.close_taken(session.id)
            if conn is not None:
                session.positions = dict(local.positions)  # exact: the old connection's
        if node != self.node.uid:
            try:
                await self.node.cluster.tell(node, session.id)
            except Exception as exc:  # noqa: BLE001 - it times out on its own
                log.warning("telling a node of a take-over failed: %r", exc)

    def close_taken(self, session_id: str) -> None:
        """Close the local connection of a session resumed elsewhere (1008); its
        record is not written again: it was claimed."""
        node = self.node
        session = node.sessions.get(session_id)
        if session is None or session.conn is None:
            return
        conn = session.conn
        node.sessions.remove(session)
        conn.close(CloseCode.POLICY_VIOLATION, TAKEN_OVER)
        node.release(conn)  # leaves its channels now: its positions become exact

    # -- the resume request ---------------------------------------------------------------
    def resume(self, msg: Resume, conn: Connection) -> None:
        rid = msg.id if type(msg.id) is int else None
        if conn.closed:
            return  # closing: the new token could not reach the client
        if not conn.first:
            conn.send_error(rid, ErrorCode.INVALID_MESSAGE, NOT_FIRST, {"path": "$"})
            return
        conn.first = False
        conn.waiting = []
        self._run(self._resume(conn, rid, msg.token))

    async def _resume(self, conn: Connection, rid: int | None, token: str) -> None:
        node, fresh = self.node, conn.session
        try:
            opened = await node.sessions.claim(fresh.user, fresh.meta, token) if token else None
        except Exception as exc:  # noqa: BLE001 - as a token that does not resume
            log.warning("session store failed: %r", exc)
            opened = None
        if conn.closed:
            if opened is not None:
                await self._give_back(opened, token)
            return
        if opened is None:
            conn.send(Resumed(rid, fresh.id, fresh.resume_token, False))
            self._release(conn)
            return
        session = opened.session
        if opened.taken_from:
            await self._take_over(session, opened.taken_from)
        node.sessions.remove(fresh)  # the session of the welcome goes as if it never was
        self._bind(conn, session)
        conn.send(Resumed(rid, session.id, session.resume_token, True))
        for attach in node.on_attach:
            attach(conn, True)
        self._release(conn)
        try:
            await node.sessions.store.revoke(fresh.resume_token)
        except Exception as exc:  # noqa: BLE001 - it expires on its own
            log.warning("session store failed: %r", exc)
