"""Whether a run measured anything: the rules that override ``--fail-if``.

A CI gate must never pass a run whose numbers describe nothing: a throughput
of 0 and no errors is what a server that refused or closed every connection
looks like. So, whatever the thresholds say, the run *could not run* (exit 3)
when

1. no connection was established (every handshake failed or was refused);
2. some handshakes failed (the load was not the load asked for);
3. the server closed every connection it accepted;
4. the scenario's work count (``Scenario.measured``: requests, deliveries,
   connections) is 0;
5. the server closed some connections, unless ``--allow-server-close``
   (then ``closed_by_server`` and ``closed_<code>`` are ordinary metrics
   for ``--fail-if``).

:func:`problem` returns the one-line reason, or None for a valid run.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastcomm.loadgen.spec import Scenario, WorkerResult
from fastcomm.loadgen.summary import total

__all__ = ["close_codes", "problem", "refused_statuses"]

# What the close codes a server may send mean, for the reason line (docs/PROTOCOL.md).
_MEANING = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1006: "dropped without a CLOSE",
    1007: "invalid UTF-8",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    4003: "session revoked",
    4008: "slow consumer",
    4029: "rate limited",
}


def _by_suffix(results: list[WorkerResult], prefix: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for result in results:
        for name, value in result.counters.items():
            suffix = name.removeprefix(prefix)
            if suffix != name and suffix.isdigit():
                counts[int(suffix)] = counts.get(int(suffix), 0) + int(value)
    return dict(sorted(counts.items()))


def close_codes(results: list[WorkerResult]) -> dict[int, int]:
    """How many connections the server closed with each close code."""
    return _by_suffix(results, "closed_")


def refused_statuses(results: list[WorkerResult]) -> dict[int, int]:
    """How many upgrades the server refused with each HTTP status."""
    return _by_suffix(results, "refused_")


def _codes_text(codes: Mapping[int, int]) -> str:
    return ", ".join(
        f"{code} {_MEANING.get(code, 'close code')} x{count}" for code, count in codes.items()
    )


def _first_error(results: list[WorkerResult]) -> str:
    errors = [error for result in results for error in result.errors]
    return errors[0] if errors else "no connection could be established"


def problem(
    scenario: Scenario,
    results: list[WorkerResult],
    metrics: Mapping[str, float],
    allow_server_close: bool,
) -> str | None:
    """The reason this run measured nothing trustworthy, or None (see the module doc)."""
    opened = int(total(results, "opened"))
    failed = int(total(results, "failed_conns"))
    closed = int(total(results, "closed_by_server"))
    statuses = refused_statuses(results)
    if statuses:
        refused = ", ".join(f"HTTP {status} x{n}" for status, n in statuses.items())
        why = f"the server refused the WebSocket upgrade ({refused})"
    else:
        why = _first_error(results)
    if opened == 0:
        return f"no connection could be established: {why}"
    if failed:
        return f"{failed} of {failed + opened} connections could not be established: {why}"
    codes = _codes_text(close_codes(results))
    if closed >= opened:
        return f"the server closed every connection ({codes})"
    if metrics.get(scenario.measured, 0.0) <= 0:
        return f"nothing was measured: 0 {scenario.unit} ({scenario.measured}=0)"
    if closed and not allow_server_close:
        return (
            f"the server closed {closed} of {opened} connections ({codes}); "
            "pass --allow-server-close to measure anyway"
        )
    return None
