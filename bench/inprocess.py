"""A fastcomm server's message path without sockets, for in-process timing.

:func:`fake_connection` opens a real :class:`~fastcomm.sessions.connection.Connection`
on a real (never started) node through the in-memory transport, which only
counts what is sent, so admission, the router, the handler, the reply
encoding and ``send_encoded`` all run as they do in production, minus the
system calls.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from fastcomm.config import build_config
from fastcomm.loadgen.app import app as bench_app
from fastcomm.node.node import Node
from fastcomm.sessions.connection import Connection
from fastcomm.transports.memory import opened

__all__ = ["LOOP", "fake_connection", "interleaved_timing", "server"]


def server(**options: Any) -> Node:
    """A node of the bundled bench app, built but not serving any socket."""
    config = build_config({"port": 0, "rate_limit": 1e9, "rate_burst": 10**9, **options}, env={})
    node = Node(bench_app, config)
    node.accepting = True
    return node


LOOP = asyncio.new_event_loop()
"""The loop in-process benchmarks run the node's tasks on (a welcome is one)."""


def fake_connection(node: Node, subprotocol: str = "fastcomm.v1.json") -> Connection:
    """A connection whose transport counts frames and keeps none, welcomed (its
    session's record written, on :data:`LOOP`)."""
    headers = {"Sec-WebSocket-Protocol": subprotocol}
    conn, _ = LOOP.run_until_complete(opened(node, headers=headers, record=False))
    return conn


def interleaved_timing(
    funcs: dict[str, Callable[[], object]], number: int, repeat: int
) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation ``repeat`` times."""
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, func in funcs.items():
                samples[name].append(timeit.timeit(func, number=number) / number)
    finally:
        if enabled:
            gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}
