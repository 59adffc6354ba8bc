"""Waiting for this process's own copy of a publication (the Redis broker's publish).

A publish returns once this process's subscribers of the channel have the
publication, as with the memory broker, so a client's own publication reaches
it before the ``published`` reply. The pub/sub connection is subscribed to the
channel, so the publication comes back on it: :class:`Arrivals` remembers the
last offset handed to the hub per channel and wakes the publishes waiting for
an offset at or below it, with no round trip of its own.
"""

from __future__ import annotations

import asyncio

__all__ = ["Arrivals"]


class Arrivals:
    """The last publication of each subscribed channel handed to the nodes."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, int]] = {}
        self._waiting: dict[str, list[tuple[str, int, asyncio.Future[None]]]] = {}

    def arrived(self, channel: str, epoch: str, offset: int) -> None:
        """Publication ``offset`` of ``epoch`` was handed to the nodes."""
        self._last[channel] = (epoch, offset)
        waiting = self._waiting.get(channel)
        if waiting:
            still = []
            for entry in waiting:
                if entry[0] != epoch or entry[1] <= offset:  # here, or never in this epoch
                    if not entry[2].done():
                        entry[2].set_result(None)
                else:
                    still.append(entry)
            self._waiting[channel] = still

    def forget(self, channel: str) -> None:
        """The process no longer follows ``channel``: nobody waits for it any more."""
        self._last.pop(channel, None)
        for _, _, waiter in self._waiting.pop(channel, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, channel: str, epoch: str, offset: int, timeout: float) -> None:
        """Return once publication ``offset`` of ``epoch`` (or a later one, or one of
        another epoch) was handed on, or after ``timeout`` (the listener repairs it)."""
        last = self._last.get(channel)
        if last is not None and (last[0] != epoch or last[1] >= offset):
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (epoch, offset, waiter)
        self._waiting.setdefault(channel, []).append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiting.get(channel)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del self._waiting[channel]
