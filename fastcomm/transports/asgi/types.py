"""The ASGI 3 callables and events, typed loosely (events are plain dicts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Event", "Receive", "Scope", "Send", "route_path"]

Scope = MutableMapping[str, Any]
Event = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Event]]
Send = Callable[[Event], Awaitable[None]]


def route_path(scope: Scope) -> str:
    """The request path below the mount point: ``scope["path"]`` without ``root_path``.

    A FastAPI/Starlette mount, ``uvicorn --root-path`` and granian's
    ``--url-path-prefix`` all set ``root_path``; servers that leave ``path``
    without the prefix are handled too (the path is then used as is).
    """
    path: str = scope.get("path") or "/"
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root):
        rest = path[len(root) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path
