"""The application's authorization hooks for channels, and the one way they are asked."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["PUBLISH_REFUSED", "SUBSCRIBE_REFUSED", "ChannelHooks", "Verdict", "ask", "granted"]

SUBSCRIBE_REFUSED = "not allowed to subscribe to this channel"
"""The ``forbidden`` error's message when the subscribe hook refuses."""
PUBLISH_REFUSED = "not allowed to publish to this channel"
"""The ``forbidden`` error's message when the publish hook refuses."""

Verdict = Awaitable[Any] | bool
"""An authorization outcome: True (no hook, or granted), False (refused), or to await."""


class ChannelHooks:
    """``subscribe(conn, channel)`` and ``publish(conn, channel, data)``, each returning
    a truthy value to allow (or an awaitable of one); None when not set. The app
    sets them (``App.authorize_subscribe``/``authorize_publish``); channels read
    them at each request, so a hook set after the server started applies too."""

    __slots__ = ("publish", "subscribe")

    def __init__(self) -> None:
        self.subscribe: Callable[[Connection, str], Any] | None = None
        self.publish: Callable[[Connection, str, Any], Any] | None = None


def ask(hook: Callable[..., Any] | None, *args: Any) -> Verdict:
    """Call ``hook(*args)``: True without a hook, else its answer as a bool, or the
    awaitable it returned. Raises what the hook raised."""
    if hook is None:
        return True
    result = hook(*args)
    if inspect.isawaitable(result):
        return result
    return bool(result)


async def granted(verdict: Verdict) -> bool:
    """The final answer of a :data:`Verdict` (awaited if it has to be)."""
    return verdict if isinstance(verdict, bool) else bool(await verdict)
