"""The in-memory broker's presence: members by channel, each with an expiry.

A member added with a TTL is dropped once that time passes without a
:meth:`Members.keep` (its node refreshes its live members in batches); one
added without stays until removed. Expired members are never listed and are
freed on read and by :meth:`Members.expire` (the broker's sweep). No ``leave``
event is sent for an expired member: its node is gone and said nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastcomm.protocol.channel_messages import Member

__all__ = ["Members"]

_FOREVER = float("inf")


class Members:
    """``channel -> session -> (member, expires)``; ``clock`` gives monotonic seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_channel: dict[str, dict[str, tuple[Member, float]]] = {}
        self.expiring = 0  # members added with a TTL and not removed since (an upper bound)

    def __len__(self) -> int:
        return len(self._by_channel)

    def add(self, channel: str, member: Member, ttl: float = 0.0) -> None:
        expires = self._clock() + ttl if ttl > 0 else _FOREVER
        self._by_channel.setdefault(channel, {})[member.session] = (member, expires)
        if ttl > 0:
            self.expiring += 1

    def remove(self, channel: str, session: str) -> None:
        members = self._by_channel.get(channel)
        if members is not None and members.pop(session, None) is not None and not members:
            del self._by_channel[channel]

    def leave(self, session: str, channels: Iterable[str]) -> None:
        for channel in channels:
            self.remove(channel, session)

    def keep(self, present: Iterable[tuple[str, str]], ttl: float) -> None:
        """Push back the expiry of each ``(channel, session)`` that is still a member."""
        expires = self._clock() + ttl
        for channel, session in present:
            members = self._by_channel.get(channel)
            if members is None:
                continue
            entry = members.get(session)
            if entry is not None and entry[1] != _FOREVER:
                members[session] = (entry[0], expires)

    def of(self, channel: str) -> list[Member]:
        members = self._by_channel.get(channel)
        if not members:
            return []
        now = self._clock()
        gone = [session for session, (_, expires) in members.items() if expires <= now]
        for session in gone:
            self.remove(channel, session)
        return [member for member, expires in members.values() if expires > now]

    def expire(self) -> None:
        """Free every expired member."""
        if not self.expiring:
            return
        now, left = self._clock(), 0
        for channel in list(self._by_channel):
            members = self._by_channel[channel]
            for session in [s for s, (_, expires) in members.items() if expires <= now]:
                self.remove(channel, session)
            left += sum(1 for _, expires in members.values() if expires != _FOREVER)
        self.expiring = left
