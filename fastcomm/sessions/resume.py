"""The ``resume`` request: resume a detached session from a connection's first message.

Clients that cannot set the ``Fastcomm-Resume`` header (browsers) send the
resume token as their first message instead of in the URL, which access logs
keep. The connection was welcomed with a new session; a token that resumes
(the same user, within ``session_ttl``: :meth:`SessionRegistry.swap`) puts
the resumed session, with a new token, in its place, and the node's
``on_attach`` callbacks run again with ``resumed=True``: subscriptions are
restored exactly as after a resume in the upgrade. The new session goes as if
it never existed: it was in no channel or presence list, it is never
resumable, and no disconnect hook runs for it (connect and disconnect hooks
are about connections; the connection stays). A token that does not resume
leaves the new session in place (``"resumed": false``).

Telling the first message apart costs nothing per message: ``Node._route``
spends one rate token on every message before routing it, and only the sweep
refills tokens, clearing ``conn.fresh`` as it does. So while ``conn.fresh``
holds, the tokens spent since the connection opened are its messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastcomm.errors import ErrorCode
from fastcomm.protocol.messages import Resume, Resumed

if TYPE_CHECKING:
    from fastcomm.routing.router import Router
    from fastcomm.sessions.connection import Connection
    from fastcomm.sessions.registry import SessionRegistry

__all__ = ["NOT_FIRST", "install", "is_first"]

NOT_FIRST = "resume must be the first message of a connection not resumed at the upgrade"
"""The ``invalid_message`` text of a ``resume`` that comes too late."""


def is_first(conn: Connection, tokens_left: float) -> bool:
    """True while routing the first message of ``conn``, on the new session made for
    it; ``tokens_left`` is the connection's rate burst minus one (see the module
    docstring)."""
    return conn.fresh and conn.rate_tokens == tokens_left and not conn.session.positions


def install(
    router: Router,
    sessions: SessionRegistry,
    on_attach: list[Callable[[Connection, bool], None]],
    rate_burst: int,
) -> None:
    """Route ``resume`` requests on ``router`` (before it is frozen); a resumed
    session's connection is passed to each of ``on_attach`` with ``resumed=True``."""
    tokens_left = float(rate_burst) - 1.0

    def resume(msg: Resume, conn: Connection) -> None:
        rid = msg.id if type(msg.id) is int else None
        if conn.closed:
            return  # closing: the new token could not reach the client
        if not is_first(conn, tokens_left):
            conn.send_error(rid, ErrorCode.INVALID_MESSAGE, NOT_FIRST, {"path": "$"})
            return
        conn.fresh = False
        session = sessions.swap(conn.session, msg.token)
        if session is None:
            fresh = conn.session
            conn.send(Resumed(rid, fresh.id, fresh.resume_token, False))
            return
        conn.session = session
        conn.send(Resumed(rid, session.id, session.resume_token, True))
        for attach in on_attach:
            attach(conn, True)

    router.add(Resume, resume)
