"""Connections before their upgrade: counted, bounded, and quiet in the logs.

picows owns a connection from accept until its handshake callback; three
things fastcomm needs there are done here:

* :class:`Pending` / :class:`ServerProtocol`: the peer address for the
  connect hook, and a bound on connections that have not completed their
  upgrade (``max_pending_handshakes``; beyond it a connection gets 503 and
  is closed at once). One that goes away before fastcomm saw its request
  (malformed or oversized HTTP, handshake timeout, abandoned) is counted in
  ``Stats.handshake_incomplete``.
* :class:`PicowsLog`: picows reports client mistakes (a bad frame, an
  oversized header) at ERROR; they are the client's, so they are logged at
  DEBUG, with a summary at INFO at most once a minute. Anything else picows
  logs keeps its level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from picows.picows import WSProtocol  # type: ignore[attr-defined]

from fastcomm.stats import Stats

__all__ = ["HandshakeGate", "Pending", "PicowsLog", "ServerProtocol", "decided"]

_BUSY_BODY = b"503 too many connections in handshake\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)
# picows messages that describe the peer's mistakes, not the server's.
_CLIENT_FAULTS = (
    "WS parser error",
    "Disconnect because HTTP request violated",
    "Handshake timeout",
)
_SUMMARY_EVERY = 60.0


class Pending:
    """One connection's handshake state: its peer, and whether fastcomm decided it."""

    __slots__ = ("decided", "peer")

    def __init__(self) -> None:
        self.peer: Any = None
        self.decided = False


class HandshakeGate:
    """Counts connections between accept and the handshake decision."""

    __slots__ = ("limit", "open", "stats")

    def __init__(self, limit: int, stats: Stats) -> None:
        self.limit = limit
        self.stats = stats
        self.open = 0


class ServerProtocol(WSProtocol):  # type: ignore[misc]
    """picows' protocol, plus the peer address and the pending-handshake bound."""

    __slots__ = ("gate", "pending")
    gate: HandshakeGate
    pending: Pending

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pending, gate = self.pending, self.gate
        pending.peer = transport.get_extra_info("peername")
        super().connection_made(transport)
        if gate.open >= gate.limit:
            pending.decided = True  # refused here, counted here
            gate.stats.reject(503)
            write = getattr(transport, "write", None)
            if write is not None:
                write(_BUSY)
            transport.close()
            return
        gate.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.pending.decided:
            self.pending.decided = True
            self.gate.open -= 1
            self.gate.stats.handshake_incomplete += 1
        super().connection_lost(exc)


def decided(pending: Pending, gate: HandshakeGate) -> None:
    """The handshake callback ran: the connection no longer counts as pending."""
    if not pending.decided:
        pending.decided = True
        gate.open -= 1


class PicowsLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger given to picows (an adapter: given a Logger, picows would make a
    child logger per connection). Client faults go to DEBUG (see the module doc)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self.faults = 0
        self._since = time.monotonic()

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level >= logging.WARNING and isinstance(msg, str) and msg.startswith(_CLIENT_FAULTS):
            self.faults += 1
            level = logging.DEBUG
            now = time.monotonic()
            if now - self._since >= _SUMMARY_EVERY:
                self.logger.info(
                    "%d client protocol errors in the last %.0f s (details at debug level)",
                    self.faults,
                    now - self._since,
                )
                self.faults, self._since = 0, now
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs
