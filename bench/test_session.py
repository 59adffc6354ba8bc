"""Session create + cleanup, in process: what the server does per connection
between the upgrade and the disconnect (session and resume token, welcome,
connection tracking, channel attach/detach, disconnect hooks).

Gate: median <= SESSION_BUDGET_S (no founding number; our budget, far below
the 100 ms connect floor), and nothing left behind after cleanup.
"""

from __future__ import annotations

from typing import Any

from bench.budgets import SESSION_BUDGET_S
from bench.inprocess import interleaved_timing, server
from bench.profiles import Profile
from fastcomm.sessions import Identity
from fastcomm.transports.memory import connect


def test_session_create_and_cleanup(benchmark: Any, profile: Profile) -> None:
    srv = server(session_ttl=0)  # ttl 0: cleanup at disconnect is complete
    identity = Identity("bench-user", {"plan": "free"})
    hook, srv.app.connect_hook = srv.app.connect_hook, lambda request: identity

    def cycle() -> None:
        _, transport = connect(srv, record=False)
        transport.drop()

    number = max(1, profile.number // 10)
    try:
        medians = interleaved_timing({"session": cycle}, number, profile.repeat)
        benchmark.pedantic(cycle, iterations=number, rounds=profile.repeat)
    finally:
        srv.app.connect_hook = hook
    benchmark.extra_info["median_us"] = medians["session"] * 1e6
    print(f"\nsession create + cleanup: {medians['session'] * 1e6:.2f} µs")
    assert len(srv.sessions) == 0 and srv.sessions.detached_count == 0
    assert not srv.connections and not srv.sessions.by_user
    assert medians["session"] <= SESSION_BUDGET_S
