"""Benchmark profiles: how long and how many rounds each benchmark runs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    rounds: int  # interleaved rounds of each end-to-end comparison
    seconds: float  # measured seconds of each load-generator run
    warmup: float
    rpc_conns: int
    fanout_subscribers: int
    storm_conns: int
    idle_conns: int
    repeat: int  # repeats of each in-process timing
    number: int  # calls per in-process timing


PROFILES = {
    "quick": Profile("quick", 5, 2.0, 0.5, 64, 1000, 1000, 2000, 15, 20_000),
    "full": Profile("full", 7, 5.0, 1.0, 64, 1000, 1000, 10_000, 41, 50_000),
}
