"""Run an App: :class:`Server` (in-process, any loop) and :func:`serve` (the CLI's).

:class:`Server` serves one :class:`~fastcomm.node.Node` over the picows
transport on the current event loop (an async context manager, for tests and
embedding). :func:`serve` is what ``fastcomm serve`` calls: it runs a Server
on uvloop until SIGTERM/SIGINT, drains, and returns the exit status; with
``transport = "granian"`` it hands the App to granian instead, and with
``workers`` > 1 to a supervisor (:mod:`fastcomm.runners.supervisor`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from functools import partial
from typing import Any

from fastcomm.app import App
from fastcomm.config import Config, build_config
from fastcomm.errors import ConfigError, StartupError
from fastcomm.http.api import HttpApi
from fastcomm.node.brokers import make_broker, reach
from fastcomm.node.node import Node
from fastcomm.runners.tls import server_context
from fastcomm.transports.granian.rsgi_http import EmbeddedServer, serve_embedded
from fastcomm.transports.picows.server import PicowsServer

__all__ = ["Server", "serve"]

log = logging.getLogger("fastcomm.server")


class Server:
    """A fastcomm server bound to ``config.host:config.port`` (port 0: any free port).

    ``Server(app, port=0)`` builds the config from keyword options; pass
    ``config=`` to use a prepared one. Use ``async with`` or
    :meth:`start`/:meth:`stop`. ``node`` is the running node (sessions,
    channels, stats, the server API). With ``ssl_certfile``/``ssl_keyfile`` it
    serves ``wss://`` (and the HTTP API over https); a file that cannot be read
    or a bad certificate raises :class:`StartupError` here.
    """

    def __init__(self, app: App | None = None, *, config: Config | None = None, **options: Any):
        self.config = config if config is not None else build_config(options, env={})
        self.app = app if app is not None else App()
        self.ssl = server_context(self.config)  # before the node: nothing to undo
        self.node = Node(self.app, self.config)
        self._picows = PicowsServer(self.node)
        self._api: EmbeddedServer | None = None
        self.port = 0
        if self.config.api_key is not None and self.config.api_port is None:
            raise ConfigError(
                "api_key is set but api_port is not: with the picows transport the HTTP "
                "API is served on its own port (--api-port)"
            )

    @property
    def url(self) -> str:
        scheme = "ws" if self.ssl is None else "wss"
        return f"{scheme}://{self.config.host}:{self.port}{self.config.path}"

    async def start(self) -> None:
        """Bind and start accepting; ``self.port`` is the bound port afterwards. A
        broker that does not answer (within ``broker_wait``) raises StartupError."""
        try:
            await self.node.reach_broker()
        except StartupError:
            await self.node.close()
            raise
        self.node.start()
        config = self.config
        try:
            # A worker of --workers shares its port with the others.
            reuse = {"reuse_port": True} if config.worker_id is not None else {}
            await self._picows.start(config.host, config.port, ssl=self.ssl, **reuse)
        except OSError as exc:
            self.node.accepting = False
            await self.node.close()
            raise StartupError(
                f"cannot listen on {config.host}:{config.port}: {_why(exc)}"
            ) from None
        self.port = self._picows.port
        if config.api_key is not None and config.api_port is not None and _serves_api(config):
            api = HttpApi(
                self.node.api,
                api_key=config.api_key,
                max_body=config.api_max_body,
                max_channel_length=config.max_channel_length,
            )
            try:
                self._api = await serve_embedded(
                    api.handle, config.host, config.api_port, config.api_max_body,
                    too_large=api.too_large, ssl_cert=config.ssl_certfile,
                    ssl_key=config.ssl_keyfile,
                )  # fmt: skip
            except OSError as exc:
                await self._abandon()
                where = f"{config.host}:{config.api_port}"
                raise StartupError(f"cannot serve the HTTP API on {where}: {_why(exc)}") from None
            except BaseException:
                await self._abandon()
                raise
            scheme = "http" if self.ssl is None else "https"
            log.info("HTTP API on %s://%s:%d/api/", scheme, config.host, config.api_port)
        log.info("fastcomm listening on %s", self.url)

    async def stop(self) -> None:
        """Drain: refuse new connections, close all with 1001, wait for handlers."""
        if not self.port:
            return
        await self.node.drain()
        self._picows.stop_listening()
        if self._api is not None:
            await self._api.stop()
            self._api = None
        await self.node.close()
        self.port = 0
        log.info("fastcomm stopped")

    async def _abandon(self) -> None:
        """Undo a start that failed half way: nothing was announced, nothing to drain
        (a peer that got in meanwhile is cut), and nothing logged but the error."""
        self.node.accepting = False
        self._picows.stop_listening()
        for conn in list(self.node.connections):
            conn.transport.abort()
        await self.node.close()
        self.port = 0

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def serve(config: Config, app: App | None = None) -> int:
    """Run a server until SIGTERM/SIGINT, drain, and return the exit status (0)."""
    if config.transport == "granian":
        return _serve_granian(config, app)
    if config.workers > 1 and config.worker_id is None:
        return _supervise(config, app)
    import uvloop

    async def main() -> int:
        server = Server(app, config=config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Before start: a signal that arrives while starting still drains.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        await stop.wait()
        log.info("signal received, shutting down")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, partial(_force_exit, server))
        await server.stop()
        return 0

    return uvloop.run(main())


def _why(exc: OSError) -> str:
    """The reason alone: "Address already in use", "Name or service not known"."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if not isinstance(cause, socket.gaierror) and cause.errno and cause.errno > 0:
        return os.strerror(cause.errno)
    return cause.strerror or str(cause)


def _serve_granian(config: Config, app: App | None) -> int:
    """granian imports the App in its worker: it must be named by ``config.app``."""
    if app is not None and config.app is None:
        raise ConfigError("transport = 'granian' needs the app as module:attr or file.py:attr")
    from fastcomm.runners.granian import serve as serve_granian

    asyncio.run(_reach_broker(config))  # as the picows transport does: one line, exit 2
    return serve_granian(config)


def _serves_api(config: Config) -> bool:
    """With --workers, worker 1 alone serves the HTTP API (it acts on the whole server)."""
    return config.worker_id in (None, 1)


def _supervise(config: Config, app: App | None) -> int:
    """Workers import the App themselves: it must be named by ``config.app``."""
    if app is not None and config.app is None and app.handlers:
        raise ConfigError("workers > 1 needs the app as module:attr or file.py:attr")
    from fastcomm.runners.supervisor import supervise

    asyncio.run(_reach_broker(config))  # once, before any worker: one line, exit 2
    return supervise(config)


async def _reach_broker(config: Config) -> None:
    """Check that the broker ``config`` names answers (within ``broker_wait``) before
    granian or the supervisor starts workers; StartupError naming host:port if not."""
    broker, _ = make_broker(None, config)
    try:
        await reach(broker, config.broker_wait)
    finally:
        await broker.close()


def _force_exit(server: Server) -> None:
    log.warning("second signal: exiting without waiting for the drain")
    raise SystemExit(1)
