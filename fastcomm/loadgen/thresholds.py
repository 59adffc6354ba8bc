"""``--fail-if`` thresholds: parsing and evaluation.

A threshold is ``METRIC OP NUMBER`` such as ``p99_ms>10`` or
``throughput < 50k``: ``METRIC`` is one of the scenario's metric names, ``OP``
one of ``> >= < <= == !=``, and ``NUMBER`` a decimal or scientific number,
optionally with ``_`` separators and a ``k``/``M``/``G`` suffix. The
threshold *fails the run* when the comparison is true for the measured value.

Besides the scenario's metrics, every run has ``closed_<code>`` metrics
(``closed_4029``: connections the server closed with 4029); a code that was
never seen counts 0.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping

import msgspec

from fastcomm.errors import ConfigError

__all__ = ["CLOSE_METRIC", "Breach", "Threshold", "check", "parse_threshold"]

CLOSE_METRIC = re.compile(r"^closed_[0-9]{4}$")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}
_PATTERN = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<number>[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<suffix>[kKmMgG]?)\s*$"
)


class Threshold(msgspec.Struct, frozen=True):
    """One parsed ``--fail-if`` expression; ``text`` is its normalised spelling."""

    metric: str
    op: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def breached(self, measured: float) -> bool:
        """True when ``measured`` satisfies the failure condition."""
        return _OPS[self.op](measured, self.value)


class Breach(msgspec.Struct, frozen=True):
    """A threshold whose condition held, with the value that was measured."""

    threshold: Threshold
    measured: float

    def describe(self) -> str:
        if self.measured != self.measured:  # NaN: the metric was not measured
            return f"{self.threshold.text} (not measured in this run)"
        return f"{self.threshold.text} (measured {self.measured:g})"


def parse_threshold(text: str, metrics: Iterable[str]) -> Threshold:
    """Parse ``text``; raise :class:`ConfigError` (one line) if it is malformed
    or names a metric not in ``metrics``."""
    match = _PATTERN.match(text)
    if match is None:
        raise ConfigError(
            f"bad --fail-if {text!r}: expected METRIC OP NUMBER, e.g. 'p99_ms>10' "
            "(OP is one of > >= < <= == !=)"
        )
    known = tuple(metrics)
    metric = match["metric"]
    if metric not in known and not CLOSE_METRIC.match(metric):
        raise ConfigError(
            f"bad --fail-if {text!r}: unknown metric {metric!r} "
            f"(known: {', '.join(known)}, closed_<code>)"
        )
    value = float(match["number"].replace("_", "")) * _SUFFIX[match["suffix"]]
    return Threshold(metric, match["op"], value)


def check(thresholds: Iterable[Threshold], measured: Mapping[str, float]) -> list[Breach]:
    """Every threshold breached by ``measured``; a metric that was not measured
    (absent) counts as a breach with value NaN, so a gate never passes silently,
    except ``closed_<code>``, absent when no connection was closed with it (0)."""
    breaches = []
    for threshold in thresholds:
        value = measured.get(threshold.metric)
        if value is None and CLOSE_METRIC.match(threshold.metric):
            value = 0.0
        if value is None:
            breaches.append(Breach(threshold, float("nan")))
        elif threshold.breached(value):
            breaches.append(Breach(threshold, value))
    return breaches
