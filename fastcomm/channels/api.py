"""The server-side API of channels and sessions, exposed as methods of the App.

Application code (handlers, hooks, background tasks) calls these through the
:class:`~fastcomm.app.App` while a server runs it::

    await app.publish("chat:lobby", {"text": "maintenance in 5 minutes"})
    app.push("alice", Notice(text="hello"))      # a session id, or a user id
    members = await app.presence("chat:lobby")
    app.disconnect(session_id)                   # close 4003, not resumable

They raise :class:`RuntimeError` when the app is not being served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastcomm.channels.broker import StreamPosition
from fastcomm.channels.namespaces import channel_problem
from fastcomm.errors import CloseCode
from fastcomm.protocol.channel_messages import Member

if TYPE_CHECKING:
    from fastcomm.app import App
    from fastcomm.channels.handlers import Channels
    from fastcomm.protocol.codec import Codec
    from fastcomm.server.runtime import Server as Runtime

__all__ = ["disconnect", "presence", "publish", "push"]


def _runtime(app: App) -> Runtime:
    runtime: Runtime | None = app.runtime
    if runtime is None:
        raise RuntimeError("the app is not being served (start a fastcomm Server first)")
    return runtime


def _channels(app: App) -> Channels:
    channels: Channels = _runtime(app).channels
    return channels


async def publish(app: App, channel: str, data: Any) -> StreamPosition:
    """Publish ``data`` to every subscriber of ``channel`` and return its position.

    The namespace's history options apply; ``client_publish`` and the publish
    hook do not (the server is trusted). Raises :class:`ValueError` for an
    invalid channel name and whatever the broker raises.
    """
    channels = _channels(app)
    problem = channel_problem(channel, channels.max_channel_length)
    if problem is not None:
        raise ValueError(problem)
    options = channels.namespaces.resolve(channel)
    return await channels.broker.publish(
        channel, data, history_size=options.history_size, history_ttl=options.history_ttl
    )


def push(app: App, to: str, msg: Any) -> int:
    """Send ``msg`` to the live session whose id is ``to`` or, if there is none, to
    every live session of the user ``to``. Returns the number of connections it
    was written to. ``msg`` is a Struct (e.g. an app message type) or any
    msgspec-encodable value; it is encoded once per codec."""
    sessions = _runtime(app).sessions
    session = sessions.get(to)
    targets = [session] if session is not None else list(sessions.of_user(to))
    encoded: dict[Codec, bytes] = {}
    sent = 0
    for target in targets:
        conn = target.conn
        if conn is None:
            continue
        codec = conn.codec
        data = encoded.get(codec)
        if data is None:
            data = encoded[codec] = codec.encode(msg)
        sent += conn.send_encoded(data)
    return sent


async def presence(app: App, channel: str) -> list[Member]:
    """Members present in ``channel`` (whatever its namespace's presence option)."""
    return await _channels(app).broker.presence(channel)


def disconnect(
    app: App, session_id: str, code: int = CloseCode.SESSION_REVOKED, reason: str = ""
) -> bool:
    """Close the connection of a live session with ``code``; False if not live.

    With 4003 (the default) the session is revoked first, so it cannot be
    resumed; with another code the client may resume as usual.
    """
    runtime = _runtime(app)
    session = runtime.sessions.get(session_id)
    conn = None if session is None else session.conn
    if session is None or conn is None:
        return False
    if code == CloseCode.SESSION_REVOKED:
        runtime.sessions.revoke(session)
    conn.close(code, reason or ("session revoked" if code == CloseCode.SESSION_REVOKED else ""))
    return True
