"""Checks of a built :class:`~fastcomm.config.Config`, and byte sizes with units.

:func:`check` raises :class:`ConfigError` whose message starts with the
setting's name, so :func:`~fastcomm.config.build_config` can say where the
value came from. :func:`parse_size` reads ``1MiB``, ``64k``, ``16M``, ``1.5GB``
or plain bytes.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from fastcomm.errors import ConfigError

if TYPE_CHECKING:
    from fastcomm.config import Config

__all__ = ["SIZE_UNITS", "check", "parse_size"]

#: Suffixes (case-insensitive): k/M/G and KiB/MiB/GiB are powers of 1024,
#: kB/MB/GB powers of 1000, b/B or none bytes.
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DECIMAL = {"kb": 1000, "mb": 1000**2, "gb": 1000**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``text``; ValueError (with the accepted forms) when it is not a size."""
    match = _SIZE.fullmatch(text.replace("_", ""))
    suffix = match.group(2).lower() if match else "?"
    if len(suffix) == 3 and suffix[0] in "kmg" and suffix.endswith("ib"):
        suffix = suffix[0]
    factor = _DECIMAL.get(suffix) or SIZE_UNITS.get(suffix)
    if match is None or factor is None:
        raise ValueError(f"must be a size such as 1048576, 64k, 16M or 1MiB, got {text!r}")
    return int(float(match.group(1)) * factor)


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
    "history_max_bytes",
)


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
    if (config.ssl_certfile is None) != (config.ssl_keyfile is None):
        given, missing = ("ssl_certfile", "ssl_keyfile")[:: 1 if config.ssl_keyfile is None else -1]
        raise ConfigError(f"{given} is set but {missing} is not: TLS needs both")
    if config.app is not None and ":" not in config.app:
        raise ConfigError(f"app must be 'module:attr' or 'file.py:attr', got {config.app!r}")
    return config
