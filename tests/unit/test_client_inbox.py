"""The client's push queue (fastcomm.client.inbox.Inbox): no item lost or
duplicated when readers give up, time out or are cancelled at awkward moments.

``receive()`` of the client and of every subscription is an ``Inbox.get``;
an application cancelling a reader (``asyncio.wait_for``, a task group
shutting down) must not lose a push that was already on its way to it.
"""

from __future__ import annotations

import asyncio

import pytest

from fastcomm.client.inbox import Inbox
from fastcomm.errors import ConnectionClosed


async def waiting_reader(inbox: Inbox[str]) -> asyncio.Task[str]:
    """A task blocked in ``inbox.get()``."""
    task = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)  # one loop step: the task runs until it waits
    assert not task.done()
    return task


async def test_an_item_handed_to_a_reader_cancelled_before_it_woke_is_kept() -> None:
    inbox: Inbox[str] = Inbox()
    reader = await waiting_reader(inbox)
    inbox.put("push")  # handed over to the reader...
    reader.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert len(inbox) == 1
    assert await inbox.get(timeout=0) == "push"


async def test_that_item_goes_to_the_next_reader_in_line() -> None:
    inbox: Inbox[str] = Inbox()
    first = await waiting_reader(inbox)
    second = await waiting_reader(inbox)
    inbox.put("a")  # to ``first``, cancelled below
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) == "a"
    inbox.put("b")
    assert await inbox.get(timeout=0) == "b" and len(inbox) == 0


async def test_an_item_put_after_a_reader_was_cancelled_skips_it() -> None:
    inbox: Inbox[str] = Inbox()
    cancelled = await waiting_reader(inbox)
    other = await waiting_reader(inbox)
    cancelled.cancel()  # still queued as a waiter until it runs
    inbox.put("a")
    assert await asyncio.wait_for(other, 1) == "a"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert len(inbox) == 0


async def test_closing_ends_waiting_readers_once_and_keeps_the_first_reason() -> None:
    inbox: Inbox[str] = Inbox()
    cancelled = await waiting_reader(inbox)
    reader = await waiting_reader(inbox)
    cancelled.cancel()
    first, second = ConnectionClosed(4000, "first"), ConnectionClosed(4001, "second")
    inbox.close(first)
    inbox.close(second)
    with pytest.raises(ConnectionClosed) as ended:
        await asyncio.wait_for(reader, 1)
    assert ended.value is first
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    inbox.put("late")  # a put after close is still read, then the end again
    assert await inbox.get() == "late"
    with pytest.raises(ConnectionClosed) as again:
        await inbox.get()
    assert again.value is first
