"""A fixed-memory latency histogram in integer nanoseconds.

Values are bucketed log-linearly: exact below 128 ns, then 64 buckets per
power of two (relative error under 1.6 %), up to about 2^41 ns (36 minutes);
larger values land in the last bucket. Recording is a few integer
operations, so the load generator can record every reply. Histograms from
several worker processes merge by adding counts.
"""

from __future__ import annotations

__all__ = ["Histogram"]

_LINEAR = 128  # values below this are stored exactly
_SHIFT_BASE = 7  # log2(_LINEAR)
_SIZE = (41 - _SHIFT_BASE) * 64 + _LINEAR


def _lower_bound(index: int) -> int:
    """Smallest value that falls into bucket ``index``."""
    if index < _LINEAR:
        return index
    shift = (index >> 6) - 1
    return (index - (shift << 6)) << shift


class Histogram:
    """Counts of nanosecond values; see the module docstring for the precision.

    ``count``, ``total`` (sum), ``min`` and ``max`` are exact; percentiles are
    the midpoint of the bucket holding the rank (exact below 128 ns).
    """

    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.counts = [0] * _SIZE
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, value: int) -> None:
        """Add one value in nanoseconds (negative values count as 0)."""
        if value < _LINEAR:
            if value < 0:
                value = 0
            index = value
        else:
            shift = value.bit_length() - _SHIFT_BASE
            index = (shift << 6) + (value >> shift)
            if index >= _SIZE:
                index = _SIZE - 1
        self.counts[index] += 1
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        """Add every value of ``other`` to this histogram."""
        if other.count == 0:
            return
        counts = self.counts
        for index, n in enumerate(other.counts):
            if n:
                counts[index] += n
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def percentile(self, q: float) -> float:
        """Value in nanoseconds at quantile ``q`` (0..100); 0.0 when empty."""
        if self.count == 0:
            return 0.0
        if q >= 100:
            return float(self.max)
        rank = max(1, int(self.count * q / 100.0 + 0.5))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                low = _lower_bound(index)
                high = _lower_bound(index + 1)
                mid = (low + high - 1) / 2.0
                return float(min(max(mid, self.min), self.max))
        return float(self.max)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    # -- transport between processes ----------------------------------------------
    def to_wire(self) -> list[int]:
        """Compact form: ``[count, total, min, max, index, n, index, n, ...]``."""
        wire = [self.count, self.total, self.min, self.max]
        for index, n in enumerate(self.counts):
            if n:
                wire += (index, n)
        return wire

    @classmethod
    def from_wire(cls, wire: list[int]) -> Histogram:
        """Inverse of :meth:`to_wire`."""
        hist = cls()
        hist.count, hist.total, hist.min, hist.max = wire[:4]
        for pos in range(4, len(wire), 2):
            hist.counts[wire[pos]] += wire[pos + 1]
        return hist
