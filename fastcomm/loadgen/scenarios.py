"""The scenarios of ``fastcomm bench``, by name."""

from __future__ import annotations

from fastcomm.loadgen import connect, fanout, idle, rpc
from fastcomm.loadgen.spec import Scenario

__all__ = ["SCENARIOS"]

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (rpc.SCENARIO, connect.SCENARIO, fanout.SCENARIO, idle.SCENARIO)
}
