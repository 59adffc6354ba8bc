"""The one frozen configuration of a fastcomm server, with documented defaults.

:func:`build_config` is the only place that merges the sources, in this order
of precedence: explicit values (CLI flags or keyword arguments), then
``FASTCOMM_*`` environment variables, then a TOML file, then the defaults
below. Every other module receives a :class:`Config` and never reads the
environment.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from fastcomm.errors import ConfigError

__all__ = ["ECHO_MAX_MESSAGE_SIZE", "ENV_PREFIX", "Config", "build_config"]

ENV_PREFIX = "FASTCOMM_"
MiB = 1024 * 1024
# The echo endpoint's max_message_size unless a source sets one: the Autobahn
# TestSuite (case group 9) echoes messages of 16 MiB, plus room for framing slack.
ECHO_MAX_MESSAGE_SIZE = 16 * MiB + 1024


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Server settings. Sizes are bytes, durations seconds."""

    # Listening
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/ws"
    app: str | None = None  # "module:attr" or "path/to/file.py:attr"
    echo: bool = False  # serve an echo endpoint instead of the protocol (16 MiB messages)
    demo: bool = False  # serve the demo chat page at /demo
    transport: Literal["picows", "granian"] = "picows"  # what serves the sockets
    workers: int = 1  # processes; more than one needs a shared broker
    broker: Literal["memory"] = "memory"  # where channel state lives

    # HTTP server API (off unless api_key is set)
    api_key: str | None = None  # X-API-Key / "Authorization: apikey KEY"; never logged
    api_port: int | None = None  # picows transport: the API's own port (granian/ASGI: /api)
    api_max_body: int = 1 * MiB  # request body limit; 413 above it

    # Limits
    max_connections: int = 10_000
    max_pending_handshakes: int = 1024  # connections not yet upgraded; 503 beyond
    max_message_size: int = 1 * MiB  # after reassembly; close 1009 above it
    max_outbound_buffer: int = 4 * MiB  # per connection; close 4008 above it
    allowed_origins: tuple[str, ...] = ()  # empty: any origin is allowed
    rate_limit: float = 200.0  # messages per second per connection, sustained
    rate_burst: int = 400  # messages a connection may send at once
    rate_limit_close_after: int = 50  # consecutive rate_limited errors before 4029
    # WebSocket frames (fragments and pings too) per second and at once; 4029 beyond.
    # None: 4x the message rate and burst, plus 100 (room for pings and fragments).
    frame_rate_limit: float | None = None
    frame_burst: int | None = None
    max_subscriptions: int = 256  # channels per connection (limit_exceeded above)
    max_channels: int = 100_000  # channels with subscribers on this node (limit_exceeded)
    max_resumable_sessions: int = 10_000  # detached sessions kept; the oldest go first
    max_channel_length: int = 255

    # Timeouts
    handshake_timeout: float = 5.0
    heartbeat: float = 25.0  # ping a connection idle for this long
    heartbeat_timeout: float = 10.0  # close 1001 if the pong takes longer
    drain_timeout: float = 10.0  # on SIGTERM, wait this long for handlers
    session_ttl: float = 300.0  # resumable record kept after a disconnect

    # Auth (JWT on the connect hook when jwt_secret is set; see docs/AUTH.md)
    jwt_secret: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # Channels (defaults for channels that no namespace matches)
    history_size: int = 100
    history_ttl: float = 300.0
    presence: bool = True
    join_leave: bool = False
    client_publish: bool = True
    namespaces: tuple[Namespace, ...] = ()

    # Transport tuning and logging
    read_buffer_size: int = 1024  # initial per-connection read buffer
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"


class Namespace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Channel features for channels whose name matches ``pattern`` (fnmatch)."""

    pattern: str
    history_size: int | None = None
    history_ttl: float | None = None
    presence: bool | None = None
    join_leave: bool | None = None
    client_publish: bool | None = None


_POSITIVE = (
    "max_connections",
    "max_pending_handshakes",
    "max_message_size",
    "max_outbound_buffer",
    "rate_limit",
    "rate_burst",
    "rate_limit_close_after",
    "max_subscriptions",
    "max_channels",
    "max_channel_length",
    "handshake_timeout",
    "heartbeat",
    "heartbeat_timeout",
    "read_buffer_size",
    "api_max_body",
)
_NON_NEGATIVE = (
    "max_resumable_sessions",
    "drain_timeout",
    "session_ttl",
    "history_size",
    "history_ttl",
)
_FIELDS = {f.name: f for f in msgspec.structs.fields(Config)}


def _check(config: Config) -> Config:
    for name in _POSITIVE + _NON_NEGATIVE:
        if not math.isfinite(getattr(config, name)):
            raise ConfigError(f"{name} must be a finite number, got {getattr(config, name)!r}")
    for name in _POSITIVE:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be greater than 0, got {getattr(config, name)!r}")
    for name in _NON_NEGATIVE:
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be 0 or more, got {getattr(config, name)!r}")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {config.port}")
    if config.api_port is not None and not 1 <= config.api_port <= 65535:
        raise ConfigError(f"api_port must be between 1 and 65535, got {config.api_port}")
    if config.api_key is not None and not config.api_key.strip():
        raise ConfigError("api_key must not be empty")
    if not config.path.startswith("/"):
        raise ConfigError(f"path must start with '/', got {config.path!r}")
    for name in ("frame_rate_limit", "frame_burst"):
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a finite number greater than 0, got {value!r}")
    if config.workers < 1:
        raise ConfigError(f"workers must be 1 or more, got {config.workers}")
    if config.workers > 1 and config.broker == "memory":
        raise ConfigError(
            f"workers = {config.workers} needs a broker shared between processes; the "
            "in-memory broker is per process and a shared (Redis) broker is not available "
            "yet: use workers = 1"
        )
    if config.app is not None and ":" not in config.app:
        raise ConfigError(f"app must be 'module:attr' or 'file.py:attr', got {config.app!r}")
    return config


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Read ``FASTCOMM_<FIELD>`` variables; values are parsed like TOML scalars."""
    raw: dict[str, Any] = {}
    for key, text in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _FIELDS or name == "namespaces":
            raise ConfigError(f"unknown environment variable {key}")
        raw[name] = _parse_env_value(name, text)
    return raw


def _parse_env_value(name: str, text: str) -> Any:
    kind = str(_FIELDS[name].type)
    if "tuple" in kind:
        return [part.strip() for part in text.split(",") if part.strip()]
    if "bool" in kind:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be a boolean, got {text!r}")
    if "int" in kind or "float" in kind:
        try:
            return tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(
                f"{ENV_PREFIX}{name.upper()} must be a number, got {text!r}"
            ) from None
    return text


def _from_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    # Accept either top-level keys or a [fastcomm] table.
    section = data.get("fastcomm", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [fastcomm] must be a table")
    return section


def build_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Config:
    """Merge explicit values, environment and TOML file over the defaults.

    ``env`` defaults to ``os.environ``. ``overrides`` entries that are None are
    ignored (an unset CLI flag). Raises :class:`ConfigError` with a one-line
    message naming the offending setting.
    """
    environ = os.environ if env is None else env
    merged: dict[str, Any] = {}
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        merged.update(_from_toml(path))
    merged.update(_from_env({k: v for k, v in environ.items() if k != ENV_PREFIX + "CONFIG"}))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if merged.get("echo") and "max_message_size" not in merged:
        merged["max_message_size"] = ECHO_MAX_MESSAGE_SIZE  # see docs/CONFORMANCE.md
    try:
        config = msgspec.convert(merged, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    return _check(config)
