"""The client's table of requests in flight (fastcomm.client.pending), sans-I/O.

The awkward moment: a request's waiter was cancelled (its task cancelled, a
timeout fired) but has not run its cleanup yet when the reply, or the end of
the connection, arrives. The reply must be consumed (it is no push) and
nothing may raise ``InvalidStateError`` inside the connection's reader.
"""

from __future__ import annotations

import asyncio

import pytest

from fastcomm.client.pending import PendingRequests
from fastcomm.errors import ConnectionClosed, RequestFailed
from fastcomm.protocol.messages import ErrorReply, Pong


async def test_a_reply_for_a_waiter_cancelled_a_moment_ago_is_consumed_quietly() -> None:
    pending = PendingRequests()
    future = pending.add(pending.new_id())
    future.cancel()  # the waiter gave up; its ``release`` has not run yet
    assert pending.resolve(Pong(1)) is True  # consumed: not handed out as a push
    assert pending.resolve(Pong(1)) is False  # once
    pending.release(1)
    assert len(pending) == 0 and 1 not in pending


async def test_the_end_of_the_connection_fails_only_live_waiters() -> None:
    pending = PendingRequests()
    gone, live = pending.add(pending.new_id()), pending.add(pending.new_id())
    gone.cancel()
    pending.fail_all(lambda: ConnectionClosed(1006))
    assert gone.cancelled()
    with pytest.raises(ConnectionClosed):
        await live
    assert len(pending) == 0


async def test_ids_skip_those_in_flight_or_still_expecting_a_late_reply() -> None:
    pending = PendingRequests()
    pending.add(2)  # an explicit id of the caller's
    pending.add(3)
    pending.release(3)  # abandoned: its reply may still come
    assert [pending.new_id() for _ in range(2)] == [1, 4]
    assert pending.resolve(Pong(3)) is True  # the late reply, dropped
    assert pending.new_id() == 5
    with pytest.raises(ValueError, match="already in flight"):
        pending.add(2)


async def test_an_error_reply_fails_its_waiter() -> None:
    pending = PendingRequests()
    future = pending.add(7)
    assert pending.resolve(ErrorReply(7, "forbidden", "no", {"channel": "x"}))
    with pytest.raises(RequestFailed) as failed:
        await asyncio.wait_for(future, 1)
    assert (failed.value.code, failed.value.details) == ("forbidden", {"channel": "x"})
