"""Session create + cleanup, in process: what the server does per connection
between the upgrade and the disconnect (session and resume token, the welcome
once the session store answered, connection tracking, channel attach/detach,
disconnect hooks). Cycles run in batches of ``BATCH`` on one event loop (the
welcome is a task); the figure is per cycle.

Gate: median <= SESSION_BUDGET_S (no founding number; our budget, far below
the 100 ms connect floor), and nothing left behind after cleanup.
"""

from __future__ import annotations

from typing import Any

from bench.budgets import SESSION_BUDGET_S
from bench.inprocess import LOOP, interleaved_timing, server
from bench.profiles import Profile
from fastcomm.sessions import Identity
from fastcomm.transports.memory import opened

BATCH = 100


def test_session_create_and_cleanup(benchmark: Any, profile: Profile) -> None:
    srv = server(session_ttl=0)  # ttl 0: cleanup at disconnect is complete
    identity = Identity("bench-user", {"plan": "free"})
    hook, srv.app.connect_hook = srv.app.connect_hook, lambda request: identity

    async def cycles() -> None:
        for _ in range(BATCH):
            _, transport = await opened(srv, record=False)
            transport.drop()

    def batch() -> None:
        LOOP.run_until_complete(cycles())

    number = max(1, profile.number // 10 // BATCH)
    try:
        medians = interleaved_timing({"session": batch}, number, profile.repeat)
        benchmark.pedantic(batch, iterations=number, rounds=profile.repeat)
    finally:
        srv.app.connect_hook = hook
    per_cycle = medians["session"] / BATCH
    benchmark.extra_info["median_us"] = per_cycle * 1e6
    print(f"\nsession create + cleanup: {per_cycle * 1e6:.2f} µs")
    assert len(srv.sessions) == 0 and srv.sessions.stored() == 0
    assert not srv.connections and not srv.sessions.by_user and not srv.router.inflight
    assert per_cycle <= SESSION_BUDGET_S
