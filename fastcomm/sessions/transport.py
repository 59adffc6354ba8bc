"""The only thing the core knows of a socket: the :class:`Transport` interface.

Each transport (picows, ASGI, the in-memory one of the tests) wraps its own
connection object in a small class with these methods and hands it to
:meth:`fastcomm.node.Node.attach`. Messages given to a transport are already
encoded; the transport only frames and writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Transport", "Write"]

Write = Callable[[bytes], object]
"""Send one whole, already encoded message; never blocks, never raises for a closed peer."""


class Transport(Protocol):
    """One accepted WebSocket connection, as the core drives it.

    Contract: every method is called on the event loop, returns at once and
    never raises because the peer went away; after :meth:`abort` or the peer's
    disconnect, calls are no-ops. The transport reports backpressure by
    setting ``conn.paused`` on the :class:`~fastcomm.sessions.connection.Connection`
    it was attached to, and the disconnect by calling ``Node.detach``.
    """

    def writer(self, binary: bool) -> Write:
        """The send function for TEXT (False) or BINARY (True) messages.

        Bound once at accept time, so the per-message path makes no extra call.
        """
        ...

    def buffered(self) -> int:
        """Bytes accepted for sending but not yet written to the socket."""
        ...

    def close(self, code: int, reason: bytes) -> None:
        """Send a CLOSE frame (``reason`` is at most 123 bytes of UTF-8)."""
        ...

    def disconnect(self) -> None:
        """Close the TCP connection once what is buffered has been written."""
        ...

    def abort(self) -> None:
        """Drop the TCP connection now, discarding what is buffered."""
        ...

    def ping(self) -> bool:
        """Send a WebSocket PING; False if this transport cannot (the server in
        front of it keeps the connection alive instead)."""
        ...
