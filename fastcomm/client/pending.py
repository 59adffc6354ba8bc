"""The table of requests waiting for their reply (id -> Future), sans-I/O.

Contracts of :class:`PendingRequests`:

* :meth:`~PendingRequests.new_id` never returns an id that is in flight or
  whose reply is still expected after its waiter gave up.
* :meth:`~PendingRequests.resolve` consumes a message whose id is pending: a
  success reply completes the Future, an ``error`` reply fails it with
  :class:`~fastcomm.errors.RequestFailed`. The reply of a request that was
  abandoned (timed out, cancelled) is consumed and dropped, once.
* :meth:`~PendingRequests.fail_all` fails every waiter with a fresh exception
  each and forgets everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastcomm.client.codec import Decoded, message_id
from fastcomm.errors import RequestFailed
from fastcomm.protocol.messages import ErrorReply

__all__ = ["PendingRequests", "request_failed"]


def request_failed(msg: Decoded) -> RequestFailed | None:
    """The error to raise for a reply, or None when the reply is a success."""
    if isinstance(msg, ErrorReply):
        return RequestFailed(msg.code, msg.message, msg.details)
    if isinstance(msg, dict) and msg.get("type") == "error":
        code, text = str(msg.get("code", "")), str(msg.get("message", ""))
        return RequestFailed(code, text, msg.get("details"))
    return None


class PendingRequests:
    """Requests in flight on one connection, keyed by their integer id."""

    __slots__ = ("_abandoned", "_futures", "_last_id")

    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[Decoded]] = {}
        self._abandoned: set[int] = set()
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._futures)

    def __contains__(self, rid: int) -> bool:
        return rid in self._futures or rid in self._abandoned

    def new_id(self) -> int:
        """A fresh id (increasing; skips ids still in use)."""
        rid = self._last_id + 1
        while rid in self:
            rid += 1
        self._last_id = rid
        return rid

    def add(self, rid: int) -> asyncio.Future[Decoded]:
        """Register ``rid``; ValueError if it is already in use."""
        if rid in self:
            raise ValueError(f"a request with id {rid} is already in flight")
        future: asyncio.Future[Decoded] = asyncio.get_running_loop().create_future()
        self._futures[rid] = future
        return future

    def release(self, rid: int) -> None:
        """The waiter of ``rid`` is done; if no reply came, drop the reply when it comes."""
        if self._futures.pop(rid, None) is not None:
            self._abandoned.add(rid)

    def resolve(self, msg: Decoded) -> bool:
        """Deliver ``msg`` if it is the reply to a pending request; False if it is not."""
        rid = message_id(msg)
        if rid is None:
            return False
        future = self._futures.pop(rid, None)
        if future is None:
            if rid in self._abandoned:
                self._abandoned.discard(rid)
                return True
            return False
        if not future.done():
            error = request_failed(msg)
            if error is None:
                future.set_result(msg)
            else:
                future.set_exception(error)
        return True

    def fail_all(self, make_error: Callable[[], BaseException]) -> None:
        """Fail every waiting request with ``make_error()`` and forget all ids."""
        futures, self._futures = self._futures, {}
        self._abandoned.clear()
        for future in futures.values():
            if not future.done():
                future.set_exception(make_error())
