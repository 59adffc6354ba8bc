"""Freed memory goes back to the system once per burst of slow consumers."""

from __future__ import annotations

from fastcomm.node.memory import MemoryReturn


def test_trims_once_per_burst_and_never_while_connections_are_paused() -> None:
    calls: list[int] = []
    memory = MemoryReturn()
    memory._trim = lambda pad: calls.append(pad) or 1  # type: ignore[assignment]
    memory.check(0, 0)
    assert calls == []  # no burst yet
    memory.check(3, 2)
    assert calls == []  # slow consumers still paused: the burst is not over
    memory.check(3, 0)
    assert calls == [0] and memory.trims == 1
    memory.check(3, 0)
    assert calls == [0]  # nothing new since
    memory.check(5, 0)
    assert len(calls) == 2


def test_glibc_trim_is_found_here() -> None:
    """This project's machines run glibc: the trim is real, not a no-op."""
    assert MemoryReturn()._trim is not None
