"""The broker of a node, chosen in the configuration (``broker = "memory"``)."""

from __future__ import annotations

from fastcomm.channels.broker import Broker
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.namespaces import Namespaces
from fastcomm.config import Config
from fastcomm.errors import ConfigError

__all__ = ["make_broker"]

_META_TTL_MARGIN = 60.0


def make_broker(given: Broker | None, config: Config) -> tuple[Broker, bool]:
    """``(broker, owned)``: ``given`` (set with ``app.use_broker``; its maker closes
    it), else a new one of the kind ``config.broker`` names, which the node owns.

    ``memory`` (the default) keeps channel state in this process: the position
    of a channel published to lives as long as the longest session TTL or
    history TTL, plus a margin; a channel never published to costs nothing.
    Raises :class:`ConfigError` for an unknown broker.
    """
    if given is not None:
        return given, False
    if config.broker == "memory":
        longest = max(config.session_ttl, Namespaces(config).max_history_ttl())
        broker = MemoryBroker(
            meta_ttl=longest + _META_TTL_MARGIN,
            max_streams=config.max_streams,
            max_history_bytes=config.max_history_bytes,
            max_detached_sessions=config.max_resumable_sessions,
        )
        return broker, True
    raise ConfigError(f"unknown broker {config.broker!r}")
