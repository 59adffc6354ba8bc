"""Handing freed memory back to the operating system after a burst.

CPython frees the buffers of closed slow consumers, but glibc's allocator
keeps the freed pages in the process. :class:`MemoryReturn` asks it to give
them back (``malloc_trim``) once a burst is over: slow consumers were closed
since the last check and no connection is paused any more. On other C
libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

__all__ = ["MemoryReturn"]

log = logging.getLogger("fastcomm.server")


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryReturn:
    """Call :meth:`check` once per sweep with the slow-consumer count and the
    number of paused connections; it trims once after each burst."""

    __slots__ = ("_seen", "_trim", "trims")

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._seen = 0
        self.trims = 0

    def check(self, slow_consumers: int, paused: int) -> None:
        if slow_consumers == self._seen or paused:
            return
        self._seen = slow_consumers
        if self._trim is not None:
            self._trim(0)
            self.trims += 1
            log.debug("returned freed memory to the system after %d slow consumers", slow_consumers)
