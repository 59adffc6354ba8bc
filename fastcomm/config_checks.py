"""Checks of a built :class:`~fastcomm.config.Config`.

:func:`check` raises :class:`ConfigError` whose message starts with the
setting's name, so :func:`~fastcomm.config.build_config` can say where the
value came from.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastcomm.errors import ConfigError

if TYPE_CHECKING:
    from fastcomm.config import Config

__all__ = ["check"]

_POSITIVE = (
    "max_connections",
    "max_pending_handshakes",
    "max_message_size",
    "max_outbound_buffer",
    "max_total_outbound",
    "rate_limit",
    "rate_burst",
    "rate_limit_close_after",
    "max_subscriptions",
    "max_channels",
    "max_streams",
    "max_history_bytes",
    "max_channel_length",
    "handshake_timeout",
    "presence_ttl",
    "session_checkpoint",
    "node_ttl",
    "command_timeout",
    "heartbeat",
    "heartbeat_timeout",
    "read_buffer_size",
    "api_max_body",
    "publish_timeout",
)
_NON_NEGATIVE = (
    "max_resumable_sessions",
    "drain_timeout",
    "session_ttl",
    "idempotency_window",
    "history_size",
    "history_ttl",
    "history_max_bytes",
    "broker_wait",
)
_BROKER_SCHEMES = ("redis", "rediss", "unix")


def check(config: Config) -> Config:
    """Return ``config`` if its values are consistent; ConfigError naming the setting."""
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
    for name in ("api_key", "jwt_secret"):
        value = getattr(config, name)
        if value is not None and not value.strip():
            raise ConfigError(f"{name} must not be empty")
    if not config.host:
        raise ConfigError("host must not be empty: 0.0.0.0 or :: listens on every interface")
    if not config.path.startswith("/"):
        raise ConfigError(f"path must start with '/', got {config.path!r}")
    for name in ("frame_rate_limit", "frame_burst"):
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a finite number greater than 0, got {value!r}")
    if config.workers < 1:
        raise ConfigError(f"workers must be 1 or more, got {config.workers}")
    if config.worker_id is not None and not 1 <= config.worker_id <= config.workers:
        raise ConfigError(
            f"worker_id must be 1 to workers ({config.workers}), got {config.worker_id}"
        )
    _check_broker(config)
    if config.workers > 1 and config.broker == "memory":
        raise ConfigError(
            f"workers = {config.workers} needs a broker shared between processes; the "
            "in-memory broker is per process: use --broker redis://... or workers = 1"
        )
    if (config.ssl_certfile is None) != (config.ssl_keyfile is None):
        given, missing = ("ssl_certfile", "ssl_keyfile")[:: 1 if config.ssl_keyfile is None else -1]
        raise ConfigError(f"{given} is set but {missing} is not: TLS needs both")
    if config.app is not None and ":" not in config.app:
        raise ConfigError(f"app must be 'module:attr' or 'file.py:attr', got {config.app!r}")
    return config


def _check_broker(config: Config) -> None:
    """``broker`` is ``memory`` or a Redis URL; an error never shows its password."""
    broker = config.broker
    if broker != "memory":
        url = urlsplit(broker)
        shown = url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()
        try:
            port_ok = url.scheme == "unix" or url.port is None or url.port > 0
        except ValueError:
            port_ok = False
        if url.scheme not in _BROKER_SCHEMES:
            raise ConfigError(
                f"broker must be memory or a redis://, rediss:// or unix:// URL, got {shown!r}"
            )
        if not (url.path if url.scheme == "unix" else url.hostname) or not port_ok:
            raise ConfigError(f"broker URL {shown!r} names no server (or a bad port)")
    ttl = config.history_meta_ttl
    if ttl is not None:
        longest = max([config.history_ttl] + [n.history_ttl or 0.0 for n in config.namespaces])
        if not (math.isfinite(ttl) and ttl >= longest and ttl > 0):
            raise ConfigError(
                f"history_meta_ttl must be a finite number of seconds, at least the longest "
                f"history TTL ({longest:g}), got {ttl!r}"
            )
