"""Every budget the benchmarks assert, in one place.

Hard floors come from the founding document and are absolute. Targets are
ratios against a baseline measured in the same run, so that a slow or busy
machine does not fail the build and a real regression does.
"""

from __future__ import annotations

__all__ = [
    "CONNECT_FLOOR_MS",
    "FANOUT_CPU_RATIO",
    "IDLE_KIB_PER_CONN",
    "METRICS_COST",
    "ROUTE_FLOOR_S",
    "ROUTE_RATIO",
    "ROUTE_TARGET_S",
    "RPC_CPU_RATIO",
    "SESSION_BUDGET_S",
]

# Founding floors (absolute).
ROUTE_FLOOR_S = 10e-3  # routing a message: < 10 ms (in-process median and e2e p99)
CONNECT_FLOOR_MS = 100.0  # connection establishment p99 < 100 ms

# Targets.
ROUTE_TARGET_S = 2e-6  # in-process route of a small message, median (asserted in "full")
# The same target as a ratio to bare msgspec decode+encode of the same message:
# 2 µs over 0.45 µs measured on the reference 2-core box is 4.4; gate a bit below.
ROUTE_RATIO = 4.0
RPC_CPU_RATIO = 1.2  # server CPU per round trip vs bare picows + msgspec
FANOUT_CPU_RATIO = 1.3  # server CPU per delivery vs a bare picows loop
METRICS_COST = 0.05  # /metrics bookkeeping: < 5 % of throughput (CPU per message)
SESSION_BUDGET_S = 40e-6  # session create + cleanup through admission, median (18 µs measured)
IDLE_KIB_PER_CONN = 12.0  # server memory per idle connection
