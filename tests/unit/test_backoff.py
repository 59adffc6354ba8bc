"""The reconnect policy: exponential backoff with full jitter, attempt bounds, what to retry."""

from __future__ import annotations

import random
import statistics

import pytest

from fastcomm.client.backoff import (
    Backoff,
    backoff_delay,
    should_reconnect,
    should_retry_handshake,
)

ALMOST_ONE = 1.0 - 2**-53  # the largest value random.random() can return


def test_the_cap_doubles_per_attempt_up_to_the_maximum() -> None:
    expected = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    caps = [backoff_delay(n, 0.1, 2.0, rand=lambda: ALMOST_ONE) for n in range(8)]
    assert caps == pytest.approx(expected)
    assert all(d < cap for d, cap in zip(caps, expected, strict=True))


def test_full_jitter_spans_zero_to_the_cap() -> None:
    assert backoff_delay(3, 0.1, 10.0, rand=lambda: 0.0) == 0.0
    assert backoff_delay(3, 0.1, 10.0, rand=lambda: 0.5) == pytest.approx(0.4)
    rng = random.Random(7)
    delays = [backoff_delay(4, 0.1, 10.0, rand=rng.random) for _ in range(2000)]
    assert all(0.0 <= d < 1.6 for d in delays)
    assert len(set(delays)) == len(delays)  # jittered: no two clients wait the same
    assert statistics.mean(delays) == pytest.approx(0.8, rel=0.05)  # uniform: mean cap / 2
    assert min(delays) < 0.1 and max(delays) > 1.5


def test_huge_attempt_numbers_stay_at_the_maximum() -> None:
    assert backoff_delay(10_000, 0.1, 10.0, rand=lambda: 0.5) == 5.0
    with pytest.raises(ValueError):
        backoff_delay(-1)


def test_backoff_grows_then_stops_after_max_attempts() -> None:
    backoff = Backoff(0.1, 1.0, max_attempts=4, rand=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(6)] == pytest.approx(
        [0.05, 0.1, 0.2, 0.4, None, None]
    )
    assert backoff.attempts == 4
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.05)


def test_backoff_without_a_bound_goes_on_at_the_maximum() -> None:
    backoff = Backoff(0.5, 2.0, rand=lambda: ALMOST_ONE)
    delays = [backoff.next_delay() for _ in range(100)]
    assert None not in delays and delays[-1] == pytest.approx(2.0)
    assert Backoff(0.1, 1.0, max_attempts=0).next_delay() is None


@pytest.mark.parametrize(
    ("initial", "maximum", "attempts"),
    [(0, 1.0, None), (-1, 1.0, None), (2.0, 1.0, None), (0.1, 1.0, -1)],
)
def test_invalid_backoff(initial: float, maximum: float, attempts: int | None) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum, attempts)


@pytest.mark.parametrize("code", [1000, 1001, 1005, 1006, 1011, 1012, 1013, 4008, 4029, 4999])
def test_reconnect_after_server_or_network_endings(code: int) -> None:
    assert should_reconnect(code)


@pytest.mark.parametrize("code", [4003, 1002, 1003, 1007, 1008, 1009, 1010])
def test_no_reconnect_when_revoked_or_the_client_is_at_fault(code: int) -> None:
    assert not should_reconnect(code)


@pytest.mark.parametrize(("status", "retry"), [
    (None, True), (408, True), (429, True), (500, True), (503, True), (504, True),
    (101, False), (400, False), (401, False), (403, False), (404, False),
])  # fmt: skip
def test_which_refused_upgrades_are_retried(status: int | None, retry: bool) -> None:
    assert should_retry_handshake(status) is retry
