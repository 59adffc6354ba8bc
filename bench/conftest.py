"""Benchmark profiles: ``pytest bench --profile quick`` (CI) or ``--profile full``.

The profile may also come from ``FASTCOMM_BENCH_PROFILE``; the default is
``quick``, which finishes in a few minutes on two cores. ``full`` runs longer
and more rounds, and also asserts the absolute targets that a busy CI machine
could miss (the ratio gates apply in both).
"""

from __future__ import annotations

import os

import pytest

from bench.profiles import PROFILES, Profile


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--profile",
        choices=tuple(PROFILES),
        default=None,
        help="benchmark profile (default: $FASTCOMM_BENCH_PROFILE or quick)",
    )


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> Profile:
    name = request.config.getoption("--profile") or os.environ.get(
        "FASTCOMM_BENCH_PROFILE", "quick"
    )
    if name not in PROFILES:
        raise pytest.UsageError(f"unknown benchmark profile {name!r} (quick or full)")
    return PROFILES[name]
