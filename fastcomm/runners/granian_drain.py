"""Drain before granian drops the sockets, for ``fastcomm serve --transport granian``.

On SIGTERM/SIGINT a granian 2.8 worker closes its open WebSockets (without
a CLOSE frame) *before* it runs the ASGI lifespan shutdown, so a drain there
finds no connection left (see emmett-framework/granian#796). :func:`install`
wraps granian's worker signal setup so that the first signal first drains
every ASGI node of the worker (CLOSE 1001, in-flight handlers awaited, as
``fastcomm serve`` does on picows) and only then lets granian stop; further
signals during the drain are ignored (the drain is bounded by
``drain_timeout`` plus 2 s).

It patches ``granian._signals.set_loop_signals`` in the serving process,
which forked workers (granian's default on Linux) inherit. When granian
lacks that function, or starts workers by ``spawn``, nothing is changed and
granian's own shutdown applies.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from fastcomm.transports.asgi.lifespan import running

__all__ = ["drain_all", "install"]

log = logging.getLogger("fastcomm.server")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def drain_all() -> None:
    """Drain and close every started ASGI node of this process."""
    lifecycles = running()
    log.info("signal received, draining %d node(s) before granian stops", len(lifecycles))
    results = await asyncio.gather(*(lc.stop() for lc in lifecycles), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.error("drain failed: %r", result)


def _drain_first(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def set_loop_signals(loop: Any) -> Any:
        granian_signal = original(loop)  # what granian's own handler would set
        draining: list[asyncio.Task[None]] = []

        async def drain_then_stop() -> None:
            try:
                await drain_all()
            finally:
                granian_signal.set()

        def on_signal() -> None:
            if not draining:
                draining.append(loop.create_task(drain_then_stop()))

        for sig in _SIGNALS:
            loop.add_signal_handler(sig, on_signal)
        return granian_signal

    set_loop_signals.fastcomm_drain_first = True  # type: ignore[attr-defined]
    return set_loop_signals


def install() -> bool:
    """Make granian workers forked from now on drain first; True if installed."""
    import multiprocessing

    try:
        from granian import _signals
    except ImportError:
        return False
    original = getattr(_signals, "set_loop_signals", None)
    if original is None or multiprocessing.get_start_method() != "fork":
        return False
    if not getattr(original, "fastcomm_drain_first", False):
        _signals.set_loop_signals = _drain_first(original)
    return True
