"""Limits the operating system sets: file descriptors against ``max_connections``."""

from __future__ import annotations

import logging
import resource

from fastcomm.config import Config

__all__ = ["FD_RESERVE", "connection_capacity"]

log = logging.getLogger("fastcomm.server")

FD_RESERVE = 64
"""Descriptors kept for everything but client sockets (listeners, logs, the broker)."""


def connection_capacity(config: Config) -> int:
    """How many connections this process can hold: ``max_connections``, unless the
    file descriptor limit is lower.

    Each connection costs one descriptor, and so does each pending handshake.
    The soft limit is raised toward the hard limit when that covers the need;
    when even the hard limit is too low, the capacity is lowered to fit, with a
    warning (a client then gets 503 ``server is full``, not a reset).
    """
    need = config.max_connections + config.max_pending_handshakes + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return config.max_connections
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError) as exc:
        log.warning("could not raise the file descriptor limit to %d: %s", target, exc)
    if soft >= need:
        log.info("file descriptor limit raised to %d for max_connections", soft)
        return config.max_connections
    capacity = max(1, soft - config.max_pending_handshakes - FD_RESERVE)
    log.warning(
        "max_connections lowered from %d to %d: the file descriptor limit is %d "
        "(raise it, e.g. ulimit -n %d)",
        config.max_connections,
        capacity,
        soft,
        need,
    )
    return capacity
