"""A worker's /status sums every worker's figures (fastcomm.node.workers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fastcomm.node.workers import Workers


def _figures(worker: int, connections: int, **more: Any) -> dict[str, Any]:
    return {
        "status": "ready",
        "worker": worker,
        "pid": 100 + worker,
        "uptime": 1.0 * worker,
        "connections": connections,
        "sessions": connections,
        "sessions_resumable": None,
        "messages_in": 10 * worker,
        "errors": more.get("errors", {}),
        "broker": {"up": True, "outages": 0},
    }


def _workers(server: str | None, worker: int | None) -> Workers:
    node = SimpleNamespace(config=SimpleNamespace(server_id=server, worker_id=worker))
    return Workers(node)  # type: ignore[arg-type]


def test_without_workers_the_status_is_the_nodes_own() -> None:
    own = _figures(1, 3)
    assert _workers(None, None).merged(own) is own


def test_counts_are_summed_and_the_answering_workers_fields_kept() -> None:
    workers = _workers("abc", 1)
    workers.peers = {2: _figures(2, 5, errors={"4008": 1, "4029": 2})}
    own = _figures(1, 3, errors={"4008": 2})
    whole = workers.merged(own)
    assert (whole["worker"], whole["pid"], whole["uptime"]) == (1, 101, 1.0)
    assert whole["connections"] == 8 and whole["sessions"] == 8 and whole["messages_in"] == 30
    assert whole["errors"] == {"4008": 3, "4029": 2}
    assert whole["sessions_resumable"] is None  # nobody could count them
    assert [line["worker"] for line in whole["workers"]] == [1, 2]
    assert [line["connections"] for line in whole["workers"]] == [3, 5]
    assert whole["workers_age"] is None  # never gathered
    assert list(whole)[: len(own)] == list(own)  # the single-node fields come first
