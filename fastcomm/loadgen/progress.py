"""Live progress on stderr: one line rewritten in place, twice a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Shows ``label  elapsed  count unit  rate/s`` on one terminal line.

    :meth:`show` may be called as often as convenient; it redraws at most
    every ``interval`` seconds. :meth:`finish` erases the line.
    """

    def __init__(
        self, label: str, unit: str, stream: TextIO | None = None, interval: float = 0.5
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self._last_time = self.started
        self._last_done = 0
        self._drawn = False

    def show(self, done: int, note: str = "") -> None:
        now = time.monotonic()
        if now - self._last_time < self.interval:
            return
        rate = (done - self._last_done) / (now - self._last_time)
        self._last_time, self._last_done = now, done
        line = (
            f"{self.label}  {now - self.started:6.1f}s  {done:>12,} {self.unit}"
            f"  {rate:>10,.0f}/s  {note}"
        )
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
