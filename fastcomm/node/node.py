"""The node: one running instance of an App, whatever serves its sockets.

A :class:`Node` owns admission (:attr:`admission`), the connection registry,
the sessions, the router, channels, the sweep (heartbeat, rate refill,
session expiry), the drain, and the server API (:attr:`api`). Transports
create it, ask :meth:`Admission.upgrade` about each handshake, then
:meth:`attach` the accepted connection with their
:class:`~fastcomm.sessions.transport.Transport`, feed it whole messages
through :attr:`receive` and report the disconnect with :meth:`detach`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from fastcomm.channels.handlers import Channels
from fastcomm.config import Config
from fastcomm.errors import CloseCode, ErrorCode
from fastcomm.node.admission import Accept, Admission
from fastcomm.node.api import ServerApi
from fastcomm.node.application import Application
from fastcomm.node.brokers import make_broker, reach
from fastcomm.node.cluster import Cluster
from fastcomm.node.limits import connection_capacity
from fastcomm.node.memory import MemoryReturn
from fastcomm.node.opening import Opening
from fastcomm.node.records import Records
from fastcomm.node.sweep import sweep
from fastcomm.node.workers import Workers
from fastcomm.protocol.codec import Codec
from fastcomm.protocol.messages import Resume
from fastcomm.routing.router import Router
from fastcomm.sessions.connection import Connection
from fastcomm.sessions.identity import ConnectRequest
from fastcomm.sessions.registry import SessionRegistry
from fastcomm.sessions.session import Session
from fastcomm.sessions.transport import Transport
from fastcomm.stats import OutboundBudget, Stats

__all__ = ["RESUME_HEADER", "Node", "resume_token"]

log = logging.getLogger("fastcomm.server")


RESUME_HEADER = "Fastcomm-Resume"
"""Header that may carry the resume token instead of the ``resume`` query parameter
(for clients that can set headers: it keeps the token out of URLs and access logs)."""


def resume_token(request: ConnectRequest) -> str | None:
    """The resume token of an upgrade: the ``Fastcomm-Resume`` header, else ``?resume=``."""
    return request.headers.get(RESUME_HEADER) or request.query.get("resume") or None


class Node:
    """One App served: see the module docstring.

    ``on_attach``/``on_detach`` are the extension points channel support
    uses: called with each connection once it is welcomed (``(conn,
    resumed)``; again with ``resumed=True`` when its first message resumes a
    session, :mod:`fastcomm.node.opening`) and the moment it is gone.
    ``receive(conn, binary, payload)`` takes one whole, valid message (the
    router, or the echo endpoint).
    """

    def __init__(self, app: Application, config: Config) -> None:
        self.config = config
        self.app = app
        self.uid = secrets.token_hex(8)  # this node among others sharing a broker
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stats = Stats()
        self.router = Router()
        self.on_attach: list[Callable[[Connection, bool], None]] = []
        self.on_detach: list[Callable[[Connection], None]] = []
        self.connections: set[Connection] = set()
        self.accepting = False
        self.draining = False
        self.max_connections = config.max_connections
        self.broker, self._owns_broker = make_broker(app.broker, config)
        self.sessions = SessionRegistry(self.broker.sessions, config.session_ttl, self.uid)
        router = self.router
        self.api = ServerApi(self)
        self.opening = Opening(self)
        self.records = Records(self)
        self.cluster = Cluster(
            self.uid,
            self.api.apply,
            self.opening.close_taken,
            router.spawn,
            ttl=config.node_ttl,
            timeout=config.command_timeout,
        )
        self.channels = Channels(
            config,
            self.broker,
            app.channel_hooks,
            router.spawn,
            router.fail,
            uid=self.uid,
            control=self.cluster.control,
            changed=self.records.changed,
        )
        self.cluster.handle = self.channels.broker
        self.workers = Workers(self)  # the other workers of a --workers server
        for msg_type, route in self.channels.routes().items():
            router.add(msg_type, route)
        self.on_attach.append(self.channels.attached)
        self.on_detach.append(self.channels.detached)
        router.add(Resume, self.opening.resume)
        for msg_type, handler in app.handlers.items():
            self.router.add_handler(msg_type, handler)
        self.codecs: dict[str, Codec] = self.router.freeze()
        self.admission = Admission(self)
        self.receive: Callable[[Connection, bool, bytes], None] = (
            self._echo if config.echo else self._route
        )
        self._sweeper: asyncio.Task[None] | None = None
        self._max_outbound = config.max_outbound_buffer
        self.outbound = OutboundBudget(config.max_total_outbound)
        self.memory = MemoryReturn()
        self._burst = float(config.rate_burst)
        # Echo mode serves conformance suites: no budget on frames.
        frame_burst = config.frame_burst or 4 * config.rate_burst + 100
        self.frame_burst = float("inf") if config.echo else float(frame_burst)
        self.frame_rate = config.frame_rate_limit or 4 * config.rate_limit + 100
        app.node = self

    def routed_counts(self) -> dict[str, int]:
        counts = self.router.counts
        return {str(cls.__struct_config__.tag): n for cls, n in counts.items() if n}

    # -- connections --------------------------------------------------------------
    def attach(self, transport: Transport, accept: Accept) -> Connection:
        """Register an accepted connection with a new session; its welcome goes out
        once that session's record is written or the resumed one claimed
        (:mod:`fastcomm.node.opening`)."""
        identity, request = accept.identity, accept.request
        session = self.sessions.new(identity.user, identity.meta)
        conn = Connection(
            transport,
            accept.codec,
            session,
            request,
            stats=self.stats,
            max_outbound=self._max_outbound,
            rate_burst=self._burst,
            frame_burst=self.frame_burst,
            budget=self.outbound,
        )
        self.connections.add(conn)
        self.stats.connections_total += 1
        if not self.config.echo:
            self.opening.start(conn, resume_token(request))
        return conn

    def detach(self, conn: Connection) -> None:
        """The transport is gone: leave channels, detach the session, run hooks."""
        conn.disconnected()
        self.release(conn)

    def release(self, conn: Connection) -> None:
        """Forget ``conn`` (gone, or closing after its session was taken over): leave
        its channels, write its session's record if it is still live here, run the
        disconnect hooks."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        for detach in self.on_detach:
            try:
                detach(conn)
            except Exception:
                log.exception("cleanup after disconnect failed")
        session = conn.session
        if self.sessions.remove(session) and self.sessions.ttl > 0:
            self.router.spawn(self._detached(session))
        for hook in self.app.disconnect_hooks:
            try:
                result = hook(conn)
                if inspect.isawaitable(result):
                    self.router.spawn(_guard(result))
            except Exception:
                log.exception("disconnect hook failed")

    async def _detached(self, session: Session) -> None:
        try:
            await self.sessions.detach(session)
        except Exception as exc:  # noqa: BLE001 - it resumes from its last checkpoint
            log.warning("session store failed: %r", exc)

    def _route(self, conn: Connection, binary: bool, payload: bytes) -> None:
        """One whole message from ``conn``: count it, rate-limit it, route it (or
        keep it until the connection is welcomed)."""
        if conn.waiting is not None:
            self.opening.wait(conn, binary, payload)
            return
        self.stats.messages_in += 1
        if self.draining:
            self._unavailable(conn, payload)
            return
        conn.rate_tokens -= 1.0
        if conn.rate_tokens < 0.0:
            self._rate_limited(conn, conn.codec.request_id(payload))
            return
        if conn.rate_strikes:
            conn.rate_strikes = 0
        if binary is not conn.codec.binary:
            kind = "binary" if binary else "text"
            text = f"{kind} frames are not used by {conn.codec.name}"
            conn.send_error(None, ErrorCode.INVALID_MESSAGE, text)
            conn.first = False
            return
        self.router.dispatch(conn, payload)
        conn.first = False  # a resume is only the first message (it reads it first)

    def _echo(self, conn: Connection, binary: bool, payload: bytes) -> None:
        self.stats.messages_in += 1
        if not conn.closed:
            conn.transport.writer(binary)(payload)

    def _unavailable(self, conn: Connection, payload: bytes) -> None:
        rid = conn.codec.request_id(payload)
        conn.send_error(rid, ErrorCode.UNAVAILABLE, "server is shutting down")

    def _rate_limited(self, conn: Connection, rid: int | None) -> None:
        """``conn`` went over its rate: answer ``rate_limited``, or close 4029 after
        ``rate_limit_close_after`` consecutive strikes."""
        conn.rate_strikes += 1
        if conn.rate_strikes >= self.config.rate_limit_close_after:
            conn.close(CloseCode.RATE_LIMITED, "rate limit exceeded")
            return
        conn.send_error(rid, ErrorCode.RATE_LIMITED, "message rate limit exceeded")

    # -- lifecycle ------------------------------------------------------------------
    async def reach_broker(self) -> None:
        """Wait for the broker this node made to answer (StartupError if it does not)."""
        if self._owns_broker:
            await reach(self.broker, self.config.broker_wait)

    def start(self) -> None:
        """Check the descriptor limit, start the sweep and accept connections (call
        on the running loop)."""
        self.max_connections = connection_capacity(self.config)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(sweep(self))
            self.router.spawn(self.cluster.announce(self.api.node_info()))
        self.accepting = True

    async def drain(self) -> None:
        """Shut down without losing answers: refuse new connections, answer new
        requests ``unavailable``, let in-flight handlers finish and their replies
        go out (up to ``drain_timeout``), then close every connection with 1001."""
        self.accepting = False
        self.draining = True
        log.info("draining %d connections", len(self.connections))
        timeout = self.config.drain_timeout
        deadline = time.monotonic() + timeout
        while self.router.inflight and time.monotonic() < deadline:
            await asyncio.wait(set(self.router.inflight), timeout=deadline - time.monotonic())
        for conn in list(self.connections):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        # Peers get a short while to complete the close handshake, then are cut.
        deadline = time.monotonic() + min(timeout, 2.0)
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.transport.abort()

    async def close(self) -> None:
        """Stop the sweep and release the broker (after :meth:`drain`)."""
        self.accepting = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self.workers.close()
        await self.channels.broker.close()  # this node's handle
        if self._owns_broker:
            await self.broker.close()
        if self.app.node is self:
            self.app.node = None


async def _guard(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("disconnect hook failed")
