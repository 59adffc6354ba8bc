"""Channel names and the options that apply to them.

A channel name is 1 to ``max_channel_length`` characters from
``[A-Za-z0-9_:.\\-@/=,#$]``: enough for ``chat:lobby``, ``user#42``,
``orders/eu-west.2`` or base64url ids, and nothing that needs escaping in a
URL path, a Redis key or a log line (no spaces, quotes, ``*``, ``?``).

Options come from the first :class:`~fastcomm.config.Namespace` whose
``pattern`` matches the name (``fnmatch`` syntax, case-sensitive, ``*``
also matches ``:``), each unset field falling back to the ``Config``
default; a channel no namespace matches gets the defaults.
"""

from __future__ import annotations

import re
from fnmatch import translate
from typing import NamedTuple

from fastcomm.config import Config
from fastcomm.errors import ConfigError

__all__ = ["CHANNEL_CHARS", "ChannelOptions", "Namespaces", "channel_problem"]

CHANNEL_CHARS = r"A-Za-z0-9_:.\-@/=,#$"
_VALID = re.compile(f"[{CHANNEL_CHARS}]+")
_CACHE_LIMIT = 10_000


def channel_problem(channel: str, max_length: int) -> str | None:
    """Why ``channel`` is not a valid channel name, or None if it is."""
    if not channel:
        return "channel name is empty"
    if len(channel) > max_length:
        return f"channel name is longer than {max_length} characters"
    if _VALID.fullmatch(channel) is None:
        return "channel name has characters outside [A-Za-z0-9_:.-@/=,#$]"
    return None


class ChannelOptions(NamedTuple):
    """Effective features of one channel; ``namespace`` is the matching pattern or None."""

    history_size: int
    history_ttl: float
    presence: bool
    join_leave: bool
    client_publish: bool
    namespace: str | None = None

    @property
    def history(self) -> bool:
        """True when publications are kept (both size and TTL are positive)."""
        return self.history_size > 0 and self.history_ttl > 0


class Namespaces:
    """Resolves a channel name to its :class:`ChannelOptions`, with a bounded cache."""

    def __init__(self, config: Config) -> None:
        self.default = ChannelOptions(
            config.history_size,
            config.history_ttl,
            config.presence,
            config.join_leave,
            config.client_publish,
        )
        self._rules: list[tuple[re.Pattern[str], ChannelOptions]] = []
        for ns in config.namespaces:
            for name in ("history_size", "history_ttl"):
                value = getattr(ns, name)
                if value is not None and value < 0:
                    raise ConfigError(f"namespace {ns.pattern!r}: {name} must be 0 or more")
            d = self.default
            options = ChannelOptions(
                d.history_size if ns.history_size is None else ns.history_size,
                d.history_ttl if ns.history_ttl is None else ns.history_ttl,
                d.presence if ns.presence is None else ns.presence,
                d.join_leave if ns.join_leave is None else ns.join_leave,
                d.client_publish if ns.client_publish is None else ns.client_publish,
                ns.pattern,
            )
            self._rules.append((re.compile(translate(ns.pattern)), options))
        self._cache: dict[str, ChannelOptions] = {}

    def resolve(self, channel: str) -> ChannelOptions:
        """The options of ``channel``: first matching namespace, else the defaults."""
        if not self._rules:
            return self.default  # nothing to match: no cache to fill
        options = self._cache.get(channel)
        if options is None:
            options = self.default
            for pattern, candidate in self._rules:
                if pattern.match(channel):
                    options = candidate
                    break
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[channel] = options
        return options

    def max_history_ttl(self) -> float:
        """The longest history TTL of any namespace (or the default)."""
        return max([self.default.history_ttl, *(o.history_ttl for _, o in self._rules)])
