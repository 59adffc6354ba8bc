"""``fastcomm serve --transport granian``: the App on granian's ASGI interface.

granian imports its target in its own worker, so the App is named by an
import string (the ``APP`` given to ``fastcomm serve``; :data:`default_app`
without one) and the settings travel as ``FASTCOMM_*`` environment
variables (:func:`config_env`), which the App reads when granian first
calls it as an ASGI application. Namespaces, which have no environment
form, travel in a generated TOML file named by ``FASTCOMM_CONFIG``.

On SIGTERM the worker drains (1001) before granian closes the sockets
(:mod:`fastcomm.runners.granian_drain`). The WebSocket side uses
granian's ASGI interface, not RSGI: RSGI cannot choose a subprotocol and
loses close codes; ASGI does both and lets a refusal answer with its HTTP
status before the upgrade.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import msgspec

from fastcomm.app import App
from fastcomm.config import ENV_PREFIX, Config, build_config
from fastcomm.errors import ConfigError, StartupError
from fastcomm.runners.tls import server_context
from fastcomm.transports.asgi.types import Receive, Scope, Send
from fastcomm.transports.granian.sockets import ip_address, os_error

__all__ = ["config_env", "configured_app", "default_app", "serve", "target_of"]

default_app = App()
"""The App served when ``fastcomm serve`` is given no APP (channels only)."""

_HERE = "fastcomm.runners.granian"


class _ConfiguredApp:
    """The App that ``FASTCOMM_APP`` names, loaded by fastcomm's loader in the worker,
    with the JWT check of ``FASTCOMM_JWT_SECRET`` installed on it.

    Used for ``path/to/file.py:attr`` specs, which fastcomm loads its own way (a
    new module in the worker, without what the parent installed on its copy), and
    for :data:`default_app` when a ``jwt_secret`` is set.
    """

    def __init__(self) -> None:
        self.app: App | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app is None:
            from fastcomm.auth import JWT, configure
            from fastcomm.loader import load_app

            config = build_config({}, env=os.environ)
            app = default_app if config.app is None else load_app(config.app)
            if not isinstance(app.connect_hook, JWT):
                app = configure(app, config) or app
            self.app = app
        await app(scope, receive, send)


configured_app = _ConfiguredApp()


def target_of(config: Config) -> str:
    """granian's import string for the App of ``config``."""
    spec = config.app
    if spec is None:
        return f"{_HERE}:configured_app" if config.jwt_secret else f"{_HERE}:default_app"
    module = spec.rpartition(":")[0]
    if module.endswith(".py") or "/" in module or os.sep in module:
        return f"{_HERE}:configured_app"
    return spec


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def config_env(config: Config) -> dict[str, str]:
    """``config`` as ``FASTCOMM_*`` variables (every field but ``namespaces``)."""
    env: dict[str, str] = {}
    for field in msgspec.structs.fields(Config):
        value = getattr(config, field.name)
        if field.name != "namespaces" and value is not None:
            env[ENV_PREFIX + field.name.upper()] = _env_text(value)
    return env


def _namespaces_toml(config: Config) -> str:
    lines: list[str] = []
    for namespace in config.namespaces:
        lines.append("[[namespaces]]")
        for key, value in msgspec.structs.asdict(namespace).items():
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def export_config(config: Config, environ: MutableMapping[str, str]) -> str | None:
    """Replace the ``FASTCOMM_*`` variables of ``environ`` by ``config``'s.

    Returns the path of the TOML file written for the namespaces (the
    caller removes it), or None when there are none.
    """
    for key in [k for k in environ if k.startswith(ENV_PREFIX)]:
        del environ[key]
    environ.update(config_env(config))
    if not config.namespaces:
        return None
    fd, path = tempfile.mkstemp(prefix="fastcomm-", suffix=".toml")
    with os.fdopen(fd, "w") as fh:
        fh.write(_namespaces_toml(config))
    environ[ENV_PREFIX + "CONFIG"] = path
    return path


def granian_options(config: Config) -> Mapping[str, Any]:
    """The keyword arguments of ``granian.Granian`` for ``config``."""
    from granian.constants import Interfaces, Loops

    tls: dict[str, Any] = {}
    if server_context(config) is not None:  # checks the files: one-line error, exit 2
        tls = {"ssl_cert": Path(str(config.ssl_certfile)), "ssl_key": Path(str(config.ssl_keyfile))}
    try:
        address = ip_address(config.host)
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        raise StartupError(f"cannot listen on {where}: {exc.strerror}") from None
    return {
        "address": address,
        "port": config.port,
        "interface": Interfaces.ASGI,
        "workers": config.workers,
        "loop": Loops.uvloop,
        "websockets": True,
        "log_level": config.log_level,
        **tls,
    }


class _HeldUntilListening(logging.Filter):
    """Holds granian's log records until its socket is bound, then lets them out.

    granian logs "Starting granian" before it binds: a port in use would print
    that line before fastcomm's one-line error. Held records are dropped when
    the bind fails and written, in order, once granian's startup hooks run.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger
        self.held: list[logging.LogRecord] | None = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.held is None:
            return True
        self.held.append(record)
        return False

    def release(self) -> None:
        """granian listens: write what was held and hold nothing more."""
        held, self.held = self.held or [], None
        self.logger.removeFilter(self)
        for record in held:
            self.logger.handle(record)


def serve(config: Config) -> int:
    """Run granian in the foreground until SIGTERM/SIGINT; return the exit status (0).

    Raises :class:`ConfigError` when granian is not installed.
    """
    try:
        from granian import Granian
    except ImportError:
        raise ConfigError(
            "transport = 'granian' needs granian, a dependency of fastcomm missing here: "
            "pip install 'granian>=2.8.9,<2.9'"
        ) from None

    from fastcomm.runners.granian_drain import install

    install()
    path = export_config(config, os.environ)
    try:
        server = Granian(target_of(config), **granian_options(config))  # sets up its logging
        logger = logging.getLogger("_granian")
        held = _HeldUntilListening(logger)
        logger.addFilter(held)
        server.on_startup(held.release)  # called once the socket is bound
        server.serve()
    except RuntimeError as exc:
        error = os_error(exc)
        if error is None:
            raise
        where = f"{config.host}:{config.port}"
        raise StartupError(f"cannot listen on {where}: {error.strerror}") from None
    finally:
        if path is not None:
            os.unlink(path)
    return 0
