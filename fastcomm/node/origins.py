"""The ``Origin`` check of a browser's upgrade (cross-site WebSocket hijacking).

A page on any site may open a WebSocket to any server, and the browser sends
that server's cookies along; what it cannot forge is ``Origin``. So, with no
``allowed_origins``, an upgrade that carries an ``Origin`` is accepted only
when the origin's host and port are the ``Host`` the request was sent to:
compared case-insensitively, ports 80 and 443 counting as no port, the scheme
not compared (a proxy that terminates TLS turns ``wss`` into ``ws``), and
``X-Forwarded-Host`` not read (any client can set it). ``Origin: null``
(sandboxed frames, ``file:`` pages) is refused. With ``allowed_origins``, the
origin must be one of them (``*``: any). A request without ``Origin`` is not a
browser's and is not checked.

A browser hides the 403 from the page, so every refused origin is logged at
WARNING, at most once a minute per origin; the origins remembered for that are
capped, and refusals past the cap are counted in the next warning instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

__all__ = ["OriginCheck"]

log = logging.getLogger("fastcomm.server")

_SAME_HOST = "origin not allowed: the page is not on this server's host"
_NOT_LISTED = "origin not allowed: it is not in allowed_origins"
_HOW = "allow it with --allowed-origin ORIGIN (* allows any)"
_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}
_KEPT = 256  # characters of an origin remembered and logged
_IPV6 = frozenset("0123456789abcdef:.")


def _authority(text: str) -> str | None:
    """``host[:port]`` of a ``Host`` header or an origin, lowercased, without a
    port 80 or 443; None when it is not one (a path, user info, a bad port)."""
    text = text.strip().lower()
    if text.startswith("["):  # an IPv6 address
        host, bracket, port = text.partition("]")
        if not bracket or host == "[" or not set(host[1:]) <= _IPV6 or port[:1] not in ("", ":"):
            return None
        host, port = f"{host}]", port[1:]
    else:
        host, _, port = text.partition(":")
        if not host or any(c in host for c in "/?#@[] \t"):
            return None
    if not port:
        return host
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        return None
    number = str(int(port))
    return host if number in ("80", "443") else f"{host}:{number}"


def _origin_authority(origin: str) -> str | None:
    """The authority of a serialised origin (``scheme://host[:port]``), else None."""
    scheme, sep, rest = origin.partition("://")
    if not sep or not scheme.isalpha():
        return None
    return _authority(rest)


def _origin_key(origin: str) -> str:
    """``origin`` as :class:`OriginCheck` compares it with ``allowed_origins``:
    lowercased, without a trailing ``/`` or the scheme's default port."""
    key = origin.strip().lower().rstrip("/")
    scheme, sep, _ = key.partition("://")
    default = _DEFAULT_PORTS.get(scheme) if sep else None
    if default is not None:
        key = key.removesuffix(f":{default}")
    return key


class OriginCheck:
    """Decides the ``Origin`` of upgrades against ``allowed`` (the
    ``allowed_origins`` setting; empty: the request's own host only).

    ``clock`` (monotonic seconds), ``every`` (seconds between two warnings
    about one origin) and ``remember`` (origins kept for that) bound the log.
    """

    def __init__(
        self,
        allowed: Iterable[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        every: float = 60.0,
        remember: int = 1000,
    ) -> None:
        self.allowed = frozenset(_origin_key(origin) for origin in allowed)
        self.any = "*" in self.allowed
        self.every = every
        self.remember = remember
        self.unlogged = 0  # refusals not logged since the last warning (the cap was reached)
        self._clock = clock
        self._warned: dict[str, float] = {}  # origin -> when; oldest first

    @property
    def remembered(self) -> int:
        """How many origins are remembered as warned about in the last ``every`` seconds."""
        return len(self._warned)

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """None when the upgrade may go on; else the reason for its 403 (logged).

        ``headers`` are the request's, case-insensitive.
        """
        origin = headers.get("Origin")
        if origin is None or self.any:
            return None
        host = headers.get("Host")
        if self.allowed:
            if _origin_key(origin) in self.allowed:
                return None
            reason = _NOT_LISTED
        else:
            mine = None if host is None else _authority(host)
            if mine is not None and _origin_authority(origin) == mine:
                return None
            reason = _SAME_HOST
        self._warn(origin, host, reason)
        return f"{reason}; {_HOW}"

    def _warn(self, origin: str, host: str | None, reason: str) -> None:
        origin = origin[:_KEPT]
        now = self._clock()
        warned = self._warned.get(origin)
        if warned is not None and now - warned < self.every:
            return
        self._warned.pop(origin, None)  # to the end: the dict stays in time order
        while self._warned:
            oldest = next(iter(self._warned))
            if now - self._warned[oldest] < self.every:
                break
            del self._warned[oldest]
        if len(self._warned) >= self.remember:
            self.unlogged += 1
            return
        self._warned[origin] = now
        more = f" ({self.unlogged} other refusals not logged)" if self.unlogged else ""
        self.unlogged = 0
        log.warning(
            "refused a WebSocket upgrade from origin %r to host %r: %s; %s%s",
            origin,
            None if host is None else host[:_KEPT],
            reason.removeprefix("origin not allowed: "),
            _HOW,
            more,
        )
