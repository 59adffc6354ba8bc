"""Writing the records of this node's live sessions to the session store.

A record is written before the welcome (:mod:`fastcomm.node.opening`); then
again, with the current positions, whenever a subscription goes live or is
left (a burst of them, one batch on the next turn of the loop), and at each
checkpoint of the sweep (every ``session_checkpoint``), which keeps the
records of live sessions from expiring. A node that dies writes nothing
more: its sessions resume from their last write, at most one checkpoint
behind on positions (clients drop the repeats by offset).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection
    from fastcomm.sessions.record import SessionRecord

__all__ = ["Records"]

log = logging.getLogger("fastcomm.server")


class Records:
    """The session records of ``node``'s live connections."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._changed: dict[Connection, None] = {}
        self._flushing = False

    def _record(self, conn: Connection) -> tuple[str, SessionRecord]:
        session, node = conn.session, self.node
        return session.resume_token, session.record(node.uid, node.channels.positions(conn))

    def changed(self, conn: Connection) -> None:
        """A subscription of ``conn`` went live or was left: write its record soon."""
        if self.node.sessions.ttl <= 0 or conn.waiting is not None:
            return
        self._changed[conn] = None
        if not self._flushing:
            self._flushing = True
            self.node.router.spawn(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the rest of the burst joins this batch
        changed, self._changed, self._flushing = self._changed, {}, False
        live = self.node.connections
        await self._write([self._record(c) for c in changed if c in live and not c.closed])

    def _welcomed(self) -> list[Connection]:
        return [c for c in list(self.node.connections) if c.waiting is None and not c.closed]

    async def checkpoint(self) -> None:
        """Write the records of every live session with its current positions."""
        await self._write([self._record(c) for c in self._welcomed()])

    async def rewrite(self) -> None:
        """Write the records of every live session again, creating them (the store
        came back, maybe empty)."""
        node = self.node
        for conn in self._welcomed():
            try:
                await node.sessions.save(conn.session, node.channels.positions(conn))
            except Exception as exc:  # noqa: BLE001 - lost again: the next return retries
                log.warning("session store failed: %r", exc)
                return

    async def _write(self, records: list[tuple[str, SessionRecord]]) -> None:
        try:
            await self.node.sessions.checkpoint(records)
        except Exception as exc:  # noqa: BLE001 - the next checkpoint tries again
            log.warning("session store failed: %r", exc)
