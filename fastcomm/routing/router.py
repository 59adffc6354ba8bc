"""Typed dispatch of decoded messages to their handlers.

The router owns one handler per message type (built-in or application) and
the codecs built once for the union of those types. :meth:`Router.dispatch`
is the synchronous hot path: decode and validate, then one dict lookup on
``type(msg)``. A coroutine is created only for async application handlers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from fastcomm.errors import ErrorCode, WireError
from fastcomm.protocol.codec import DECODE_FAILURES, Codec, build_codecs
from fastcomm.protocol.messages import Message, Ping, Pong, Result

if TYPE_CHECKING:
    from fastcomm.sessions.connection import Connection

__all__ = ["Route", "Router"]

log = logging.getLogger("fastcomm.router")
Route = Callable[[Any, "Connection"], None]
_DECODE_ERRORS = DECODE_FAILURES


def _ping(msg: Ping, conn: Connection) -> None:
    rid = msg.id
    if type(rid) is int:
        conn.send_encoded(conn.codec.encode(Pong(rid)))


class Router:
    """Message type -> route. Add routes, then :meth:`freeze` to build codecs.

    A route is ``(msg, conn) -> None`` and does its own replying; application
    handlers are wrapped by :meth:`add_handler` so that their return value
    becomes a ``result`` reply and their exceptions become ``error`` replies.
    """

    def __init__(self) -> None:
        self.routes: dict[type[Message], Route] = {Ping: _ping}
        self.counts: dict[type[Message], int] = {}
        self.inflight: set[asyncio.Task[None]] = set()
        self.codecs: dict[str, Codec] = {}
        # Routing latency for /metrics, sampled so that timing costs nothing measurable:
        # every `sample_every`-th dispatch is timed; latency_counts[i] counts samples in
        # (latency_bounds[i-1], latency_bounds[i]] seconds, the last entry those above.
        self.sample_every = 64
        self.sample_countdown = 1
        self.latency_bounds: tuple[float, ...] = (
            1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1,
        )  # fmt: skip
        self.latency_counts = [0] * (len(self.latency_bounds) + 1)
        self.latency_sum = 0.0

    def add(self, msg_type: type[Message], route: Route) -> None:
        """Route ``msg_type`` to a built-in route (which sends its own replies)."""
        if self.codecs:
            raise RuntimeError("router is frozen")
        if msg_type in self.routes:
            raise ValueError(f"{msg_type.__name__} is already routed")
        self.routes[msg_type] = route

    def add_handler(self, msg_type: type[Message], handler: Callable[..., Any]) -> None:
        """Route ``msg_type`` to an application handler ``(msg, conn) -> result``."""
        self.add(msg_type, self._wrap(handler))

    def freeze(self) -> dict[str, Codec]:
        """Build the codecs for every routed type; no route can be added after."""
        self.codecs = build_codecs(self.routes)
        self.counts = dict.fromkeys(self.routes, 0)
        return self.codecs

    def dispatch(self, conn: Connection, data: bytes) -> None:
        """Decode, validate and route one whole message from ``conn``.

        Every ``sample_every``-th message that decodes is timed (decode to the
        route's return) into ``latency_counts`` and ``latency_sum``.
        """
        self.sample_countdown -= 1
        if self.sample_countdown:
            start = 0.0
        else:
            self.sample_countdown = self.sample_every
            start = perf_counter()
        try:
            msg = conn.codec.decode_raw(data)
        except _DECODE_ERRORS as exc:
            self.reject(conn, data, exc)
            return
        cls = type(msg)
        self.counts[cls] += 1
        self.routes[cls](msg, conn)
        if start:
            elapsed = perf_counter() - start
            self.latency_sum += elapsed
            self.latency_counts[bisect_left(self.latency_bounds, elapsed)] += 1

    def reject(self, conn: Connection, data: bytes, exc: Exception) -> None:
        """Answer a message that failed to decode or validate."""
        codec = conn.codec
        error = codec.explain(exc)
        conn.send_error(codec.request_id(data), error.code, error.message, error.details)

    # -- application handlers -------------------------------------------------
    def _wrap(self, handler: Callable[..., Any]) -> Route:
        if inspect.iscoroutinefunction(handler):

            def run_async(msg: Message, conn: Connection) -> None:
                self.spawn(self._await(handler(msg, conn), msg, conn))

            return run_async

        def run(msg: Message, conn: Connection) -> None:
            try:
                result = handler(msg, conn)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a reply
                self.fail(msg, conn, exc)
                return
            if hasattr(type(result), "__await__"):
                self.spawn(self._await(result, msg, conn))
            else:
                self.reply(msg, conn, result)

        return run

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a tracked task (drain waits for it)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _await(self, awaitable: Any, msg: Message, conn: Connection) -> None:
        try:
            result = await awaitable
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reply
            self.fail(msg, conn, exc)
            return
        self.reply(msg, conn, result)

    def reply(self, msg: Message, conn: Connection, result: Any) -> None:
        """Send ``result`` as the ``result`` reply if the request carries an id."""
        rid = msg.id
        if type(rid) is int:
            try:
                data = conn.codec.encode(Result(rid, result))
            except (TypeError, ValueError, OverflowError) as exc:
                self.fail(msg, conn, exc)
                return
            conn.send_encoded(data)

    def fail(self, msg: Message, conn: Connection, exc: Exception) -> None:
        """Turn a handler's exception into an ``error`` reply (never a traceback)."""
        rid = msg.id if type(msg.id) is int else None
        if isinstance(exc, WireError):
            conn.send_error(rid, exc.code, exc.message, exc.details)
            return
        correlation = secrets.token_hex(6)
        log.error(
            "handler for %r raised (correlation_id=%s, session=%s)",
            type(msg).__name__,
            correlation,
            conn.session_id,
            exc_info=exc,
        )
        conn.send_error(
            rid, ErrorCode.INTERNAL, "internal server error", {"correlation_id": correlation}
        )
