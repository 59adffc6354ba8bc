"""An in-process transport: the node's real code paths with no socket.

:class:`MemoryTransport` records what the node sends; :func:`connect` runs
the node's admission and attach exactly as a network transport does; and
:meth:`MemoryTransport.receive` feeds one whole message in. Unit tests and
in-process benchmarks use it instead of hand-made fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from fastcomm.errors import FastcommError
from fastcomm.node.admission import Refuse
from fastcomm.sessions.transport import Write

if TYPE_CHECKING:
    from fastcomm.node.node import Node
    from fastcomm.sessions.connection import Connection

__all__ = ["MemoryTransport", "Refused", "connect", "opened"]

_json = msgspec.json.Decoder()
_msgpack = msgspec.msgpack.Decoder()


class Refused(FastcommError):
    """:func:`connect` was refused by admission; ``status`` is the HTTP status."""

    def __init__(self, refuse: Refuse) -> None:
        super().__init__(f"{refuse.status} {refuse.text}")
        self.status = refuse.status


class MemoryTransport:
    """Records frames instead of writing them.

    ``sent`` holds ``(binary, data)`` of every message (unless ``record`` is
    false: then only ``count`` grows); ``closed_with`` the CLOSE sent;
    ``pending`` is what :meth:`buffered` reports (set it to act as a slow
    consumer, together with ``conn.paused``).
    """

    def __init__(self, *, record: bool = True) -> None:
        self.sent: list[tuple[bool, bytes]] = []
        self.count = 0
        self.record = record
        self.closed_with: tuple[int, bytes] | None = None
        self.disconnected = False
        self.aborted = False
        self.pings = 0
        self.pending = 0
        self.conn: Connection | None = None
        self.node: Node | None = None

    # -- Transport ------------------------------------------------------------------
    def writer(self, binary: bool) -> Write:
        if not self.record:
            return self._count
        sent = self.sent

        def write(data: bytes) -> None:
            self.count += 1
            sent.append((binary, bytes(data)))

        return write

    def _count(self, data: bytes) -> None:
        self.count += 1

    def buffered(self) -> int:
        return self.pending

    def close(self, code: int, reason: bytes) -> None:
        self.closed_with = (code, reason)

    def disconnect(self) -> None:
        self._gone()

    def abort(self) -> None:
        self.aborted = True
        self._gone()

    def ping(self) -> bool:
        self.pings += 1
        return True

    # -- driving it -------------------------------------------------------------------
    def receive(self, data: bytes, binary: bool | None = None) -> None:
        """Deliver one whole message from the peer (its frame type: the codec's)."""
        assert self.conn is not None and self.node is not None
        conn = self.conn
        self.node.receive(conn, conn.codec.binary if binary is None else binary, data)

    def drop(self) -> None:
        """The peer went away (as a TCP reset would say)."""
        self._gone()

    def _gone(self) -> None:
        if not self.disconnected:
            self.disconnected = True
            if self.node is not None and self.conn is not None:
                self.node.detach(self.conn)

    def messages(self) -> list[Any]:
        """Everything sent so far, decoded to plain objects (dicts, lists...)."""
        return [(_msgpack if binary else _json).decode(data) for binary, data in self.sent]

    def take(self) -> list[Any]:
        """:meth:`messages`, then forget them."""
        out = self.messages()
        self.sent.clear()
        return out


def connect(
    node: Node,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    peer: tuple[str, int] | None = ("127.0.0.1", 1),
    record: bool = True,
) -> tuple[Connection, MemoryTransport]:
    """Open a connection to ``node`` through its admission, as a client would.

    ``headers`` are the upgrade headers (``Sec-WebSocket-Protocol``,
    ``Authorization``, ``Origin``...). Raises :class:`Refused` when admission
    refuses.
    """
    decision = node.admission.upgrade(node.config.path, query, dict(headers or {}), peer)
    if isinstance(decision, Refuse):
        raise Refused(decision)
    transport = MemoryTransport(record=record)
    transport.node = node
    transport.conn = node.attach(transport, decision)
    return transport.conn, transport


async def opened(node: Node, **options: Any) -> tuple[Connection, MemoryTransport]:
    """:func:`connect`, then wait until the connection is welcomed (its session's
    record written or claimed: :mod:`fastcomm.node.opening`)."""
    conn, transport = connect(node, **options)
    while conn.waiting is not None:
        await asyncio.sleep(0)
    return conn, transport
