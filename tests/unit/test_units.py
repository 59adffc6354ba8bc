"""Sizes and durations as people type them, and written back in a form they can type."""

from __future__ import annotations

import pytest

from fastcomm.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(25.0, "25s"), (300.0, "5m"), (3600.0, "1h"), (90.0, "90s"), (0.25, "250ms"), (2.5, "2.5s")],
)
def test_durations_are_written_as_they_would_be_typed(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("size", "text"), [(1 << 20, "1MiB"), (1536, "1536"), (4096, "4KiB")])
def test_sizes_are_written_as_they_would_be_typed(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size


def test_a_bare_number_is_seconds_even_when_the_range_check_will_refuse_it() -> None:
    assert parse_duration("1e3") == 1000.0
    assert parse_duration("inf") == float("inf")
    with pytest.raises(ValueError, match="must be a duration in seconds"):
        parse_duration("5 minutes")
