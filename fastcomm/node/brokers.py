"""The broker of a node, chosen in the configuration (``broker = "memory"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastcomm.channels.broker import Broker
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.namespaces import Namespaces
from fastcomm.config import Config
from fastcomm.errors import ConfigError

if TYPE_CHECKING:
    from fastcomm.app import App

__all__ = ["make_broker"]

_META_TTL_MARGIN = 60.0


def make_broker(app: App, config: Config) -> Broker:
    """The broker set with ``app.use_broker``, else the one ``config.broker`` names.

    ``memory`` (the default) keeps channel state in this process: its
    metadata lives as long as the longest session TTL or history TTL, plus a
    margin. Raises :class:`ConfigError` for an unknown broker.
    """
    broker = app.broker
    if broker is not None:
        return broker
    if config.broker == "memory":
        longest = max(config.session_ttl, Namespaces(config).max_history_ttl())
        return MemoryBroker(meta_ttl=longest + _META_TTL_MARGIN)
    raise ConfigError(f"unknown broker {config.broker!r}")
