"""The queue of server pushes a client has not consumed yet.

picows cannot stop reading from the socket (there is no flow control on the
read side), so the inbox never drops and never blocks the reader: it is an
**unbounded** deque. A consumer that stops calling ``receive()`` while the
server keeps pushing makes client memory grow; servers bound their own
outbound buffers (a fastcomm server closes a slow consumer with 4008), which
bounds this in practice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from fastcomm.errors import ConnectionClosed

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """FIFO of pushes with async ``get``; closing ends it after it drains.

    Contracts: :meth:`put` never blocks and never drops; items put before
    :meth:`close` are still returned by :meth:`get`, in order; once the inbox
    is closed and empty, :meth:`get` raises the :class:`ConnectionClosed`
    given to :meth:`close`. Several tasks may wait in :meth:`get` at once;
    each item goes to exactly one of them, oldest waiter first.
    """

    __slots__ = ("_closed", "_items", "_waiters")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._closed: ConnectionClosed | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (items may remain to be read)."""
        return self._closed is not None

    def put(self, item: T) -> None:
        """Append ``item``, or hand it straight to the oldest waiting ``get``."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        self._items.append(item)

    def close(self, exc: ConnectionClosed) -> None:
        """End the inbox: waiting and later ``get`` calls raise ``exc`` once it is empty."""
        if self._closed is not None:
            return
        self._closed = exc
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    async def get(self, timeout: float | None = None) -> T:
        """The next item; TimeoutError after ``timeout`` s; ConnectionClosed once ended."""
        if self._items:
            return self._items.popleft()
        if self._closed is not None:
            raise self._closed
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # An item was handed over just as this get was cancelled: keep it.
                self._give_back(waiter.result())
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _give_back(self, item: T) -> None:
        """Return an item to the head of the queue (or to the next waiter)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        self._items.appendleft(item)
