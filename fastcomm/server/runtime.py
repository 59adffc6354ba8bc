"""The server: listening socket, connection tracking, heartbeat, drain.

:class:`Server` runs on the current event loop (an async context manager, for
tests and embedding); :func:`serve` is what ``fastcomm serve`` calls: it runs
a Server on uvloop until SIGTERM/SIGINT, drains, and returns the exit status.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from picows import WSAutoPingStrategy, WSMsgType, WSTransport
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from fastcomm.app import App, ConnectRequest, Identity
from fastcomm.config import Config, build_config
from fastcomm.errors import CloseCode, ErrorCode
from fastcomm.protocol.codec import Codec
from fastcomm.protocol.messages import Welcome
from fastcomm.routing.router import Router
from fastcomm.server.connection import Connection
from fastcomm.server.handshake import Handshake
from fastcomm.server.http import endpoints
from fastcomm.server.listener import ServerListener
from fastcomm.server.metrics import install_metrics
from fastcomm.server.stats import Stats
from fastcomm.sessions.registry import SessionRegistry

__all__ = ["Server", "serve"]

log = logging.getLogger("fastcomm.server")


class _Protocol(WSProtocol):  # type: ignore[misc]
    """picows protocol that tells the handshake the peer address."""

    __slots__ = ("peer_box",)
    peer_box: list[Any] | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.peer_box is not None:
            self.peer_box[0] = transport.get_extra_info("peername")
        self.peer_box = None
        super().connection_made(transport)


class Server:
    """A fastcomm server bound to ``config.host:config.port`` (port 0: any free port).

    ``Server(app, port=0)`` builds the config from keyword options; pass
    ``config=`` to use a prepared one. Use ``async with`` or
    :meth:`start`/:meth:`stop`. ``on_attach``/``on_detach`` are the extension
    points channel support uses: called with each connection as it is
    attached (``(conn, resumed)``) and the moment it is gone.
    """

    def __init__(self, app: App | None = None, *, config: Config | None = None, **options: Any):
        self.config = config if config is not None else build_config(options, env={})
        self.app = app if app is not None else App()
        self.stats = Stats()
        self.sessions = SessionRegistry(self.config.session_ttl)
        self.router = Router()
        self.on_attach: list[Callable[[Connection, bool], None]] = []
        self.on_detach: list[Callable[[Connection], None]] = []
        self.listeners: set[ServerListener] = set()
        self.accepting = False
        self.port = 0
        self._install_features()
        for msg_type, handler in self.app.handlers.items():
            self.router.add_handler(msg_type, handler)
        self.codecs: dict[str, Codec] = self.router.freeze()
        self.http = endpoints(self)
        install_metrics(self)
        self.handshake = Handshake(self)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.app.runtime = self

    def _install_features(self) -> None:
        """Hook point for built-in features that add routes (channels, metrics)."""
        from fastcomm.channels.handlers import Channels

        self.channels = Channels(self, getattr(self.app, "broker", None))
        self.channels.install()

    # -- gauges -----------------------------------------------------------------
    @property
    def connection_count(self) -> int:
        return len(self.listeners)

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}{self.config.path}"

    def channel_count(self) -> int:
        return self.channels.hub.count()

    def routed_counts(self) -> dict[str, int]:
        counts = self.router.counts
        return {str(cls.__struct_config__.tag): n for cls, n in counts.items() if n}

    # -- connections --------------------------------------------------------------
    def new_listener(
        self, codec: Codec, identity: Identity, request: ConnectRequest
    ) -> ServerListener:
        echo = self.config.echo
        on_message = self._echo if echo else self._route
        return ServerListener(self, (codec, identity, request), on_message, limited=not echo)

    def connected(self, listener: ServerListener, transport: WSTransport) -> Connection:
        codec, identity, request = listener.pending
        session, resumed = self.sessions.attach(
            identity.user, identity.meta, request.query.get("resume")
        )
        conn = Connection(transport, codec, session, request, self)
        session.conn = conn
        self.listeners.add(listener)
        self.stats.connections_total += 1
        high = max(16 * 1024, min(256 * 1024, self.config.max_outbound_buffer // 4))
        transport.underlying_transport.set_write_buffer_limits(high=high)
        if not self.config.echo:
            conn.send(
                Welcome(
                    session.id,
                    session.resume_token,
                    resumed,
                    self.config.heartbeat,
                    self.config.max_message_size,
                )
            )
            for attach in self.on_attach:
                attach(conn, resumed)
        return conn

    def disconnected(self, listener: ServerListener) -> None:
        self.listeners.discard(listener)
        conn = listener.conn
        assert conn is not None
        for detach in self.on_detach:
            try:
                detach(conn)
            except Exception:
                log.exception("cleanup after disconnect failed")
        self.sessions.detach(conn.session)
        for hook in self.app.disconnect_hooks:
            try:
                result = hook(conn)
                if inspect.isawaitable(result):
                    self.router.spawn(_guard(result))
            except Exception:
                log.exception("disconnect hook failed")

    def _route(self, conn: Connection, binary: bool, payload: bytes) -> None:
        if binary is not conn.codec.binary:
            kind = "binary" if binary else "text"
            text = f"{kind} frames are not used by {conn.codec.name}"
            conn.send_error(None, ErrorCode.INVALID_MESSAGE, text)
            return
        self.router.dispatch(conn, payload)

    def _echo(self, conn: Connection, binary: bool, payload: bytes) -> None:
        conn.transport.send(WSMsgType.BINARY if binary else WSMsgType.TEXT, payload)

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and start accepting; ``self.port`` is the bound port afterwards."""
        config = self.config
        loop = asyncio.get_running_loop()
        # An adapter: given a Logger, picows would create a child logger per connection.
        picows_log = logging.LoggerAdapter(logging.getLogger("picows.server"), {})

        def protocol() -> _Protocol:
            box: list[Any] = [None]
            proto = _Protocol(
                None, None, False, partial(self.handshake, box), picows_log, True,
                config.handshake_timeout, False, 20.0, 20.0, WSAutoPingStrategy.PING_WHEN_IDLE,
                False, config.max_message_size, None, config.read_buffer_size,
            )  # fmt: skip
            proto.peer_box = box
            return proto

        self._server = await loop.create_server(
            protocol, config.host, config.port, backlog=4096, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.accepting = True
        self._sweeper = loop.create_task(self._sweep())
        log.info("fastcomm listening on %s", self.url)

    async def stop(self) -> None:
        """Drain: refuse new connections, close all with 1001, wait for handlers."""
        if self._server is None:
            return
        self.accepting = False
        log.info("draining %d connections", len(self.listeners))
        for listener in list(self.listeners):
            if listener.conn is not None:
                listener.conn.close(CloseCode.GOING_AWAY, "server shutting down")
        if self.router.inflight:
            await asyncio.wait(set(self.router.inflight), timeout=self.config.drain_timeout)
        # Peers get a short while to complete the close handshake, then are cut.
        deadline = time.monotonic() + min(self.config.drain_timeout, 2.0)
        while self.listeners and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for listener in list(self.listeners):
            if listener.conn is not None:
                listener.conn.transport.disconnect(False)
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._server.close()
        self._server = None
        await self.channels.broker.close()
        log.info("fastcomm stopped")

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _sweep(self) -> None:
        """Once per period: refill rate buckets, ping idle peers, drop dead ones."""
        config = self.config
        period = min(1.0, config.heartbeat / 4, config.heartbeat_timeout / 4)
        refill, burst = config.rate_limit * period, float(config.rate_burst)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for listener in list(self.listeners):
                conn = listener.conn
                if conn is None or conn.closed:
                    continue
                if conn.rate_tokens < burst:
                    conn.rate_tokens = min(burst, conn.rate_tokens + refill)
                if listener.seen:
                    listener.seen, listener.idle, listener.ping_sent = False, 0.0, 0.0
                    continue
                listener.idle += period
                if listener.ping_sent:
                    if now - listener.ping_sent > config.heartbeat_timeout:
                        conn.close(CloseCode.GOING_AWAY, "heartbeat timeout")
                        conn.transport.disconnect(False)
                elif listener.idle >= config.heartbeat:
                    conn.transport.send_ping()
                    listener.ping_sent = now
            self.sessions.expire()


async def _guard(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("disconnect hook failed")


def serve(config: Config, app: App | None = None) -> int:
    """Run a server until SIGTERM/SIGINT, drain, and return the exit status (0)."""
    import uvloop

    async def main() -> int:
        server = Server(app, config=config)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("signal received, shutting down")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, partial(_force_exit, server))
        await server.stop()
        return 0

    return uvloop.run(main())


def _force_exit(server: Server) -> None:
    log.warning("second signal: exiting without waiting for the drain")
    raise SystemExit(1)
