"""The one way the tests wait for something: poll a condition until it holds."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = 5.0,
    what: str | Callable[[], Any] = "condition",
    interval: float = 0.01,
) -> T:
    """Poll ``check()`` (sync or async) until it is truthy and return that value; after
    ``timeout`` seconds raise AssertionError naming ``what`` (a callable is called then,
    to describe the state at the failure)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"not true within {timeout} s: {said}")
        await asyncio.sleep(interval)
