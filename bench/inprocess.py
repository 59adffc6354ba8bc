"""A fastcomm server's message path without sockets, for in-process timing.

:func:`fake_connection` builds a real :class:`~fastcomm.server.connection.Connection`
of a real (never started) server whose transport only counts what is sent,
so the router, the handler, the reply encoding and ``send_encoded`` all run
as they do in production, minus the system calls.
"""

from __future__ import annotations

import gc
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import fastcomm
from fastcomm.app import ConnectRequest
from fastcomm.loadgen.app import app as bench_app
from fastcomm.server.connection import Connection
from fastcomm.sessions.session import Session

__all__ = ["FakeTransport", "fake_connection", "interleaved_timing", "server"]


class _Underlying:
    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeTransport:
    """Stands in for a picows ``WSTransport``: counts frames, sends nothing."""

    def __init__(self) -> None:
        self.sent = 0
        self.underlying_transport = _Underlying()
        self.is_close_frame_sent = False

    def send(self, msg_type: Any, data: bytes) -> None:
        self.sent += 1

    def disconnect(self, graceful: bool = True) -> None:
        pass


def server(**options: Any) -> fastcomm.Server:
    """A server of the bundled bench app, built but not listening."""
    return fastcomm.Server(bench_app, port=0, rate_limit=1e9, rate_burst=10**9, **options)


def fake_connection(srv: fastcomm.Server, subprotocol: str = "fastcomm.v1.json") -> Connection:
    request = ConnectRequest("/ws", {}, {}, None, None)
    session = Session("bench-session", None, None, "bench-token")
    conn = Connection(FakeTransport(), srv.codecs[subprotocol], session, request, srv)  # type: ignore[arg-type]
    session.conn = conn
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
