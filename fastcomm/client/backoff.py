"""The reconnect policy of the client, pure: delays and which endings to retry.

Contracts:

* :func:`backoff_delay` is exponential backoff with **full jitter**: retry
  number ``attempt`` (0 for the first) waits a uniformly random time in
  ``[0, min(maximum, initial * 2**attempt))``. The cap doubles per attempt
  up to ``maximum``; the jitter spreads clients that lost the same server at
  the same moment, so they do not all come back at once.
* :class:`Backoff` hands out the delays of one outage: ``next_delay()``
  returns None once ``max_attempts`` delays were handed out (None: never);
  ``reset()`` starts over after a successful reconnect.
* :func:`should_reconnect` says whether a connection that ended with a close
  code is worth reconnecting: not after 4003 (session revoked), nor after
  the codes that blame the client (1002, 1003, 1007, 1008, 1009, 1010),
  where the same client would fail again. Everything else (1000 or 1001
  from the server, 1005, 1006 for a dropped connection, 1011, 1012-1014,
  4008, 4029, unknown codes) is retried. A close the client started itself
  is never retried; that is decided by the client, not here.
* :func:`should_retry_handshake` says whether a refused upgrade (HTTP status)
  is worth retrying: 408, 429, 5xx and unreadable answers (None) are
  transient; 401, 403 and the other 4xx (and 101 with the wrong
  subprotocol) would fail the same way again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = [
    "NO_RETRY_CODES",
    "RATE_LIMITED_PAUSE",
    "Backoff",
    "backoff_delay",
    "should_reconnect",
    "should_retry_handshake",
]

#: Close codes after which the client does not reconnect.
NO_RETRY_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010, 4003})

#: Extra seconds (at most ``backoff_max``) before the first retry after 4029.
RATE_LIMITED_PAUSE = 1.0

_MAX_DOUBLINGS = 64  # 2.0**attempt beyond this only matters as "the cap is maximum"


def backoff_delay(
    attempt: int,
    initial: float = 0.1,
    maximum: float = 10.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``rand() * cap`` with
    ``cap = min(maximum, initial * 2**attempt)``; ``rand`` returns a float in [0, 1)."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    cap = maximum if attempt >= _MAX_DOUBLINGS else min(maximum, initial * 2.0**attempt)
    return rand() * cap


class Backoff:
    """The delays of one outage: exponential, capped, fully jittered, bounded in number.

    Raises ValueError unless ``0 < initial <= maximum`` and ``max_attempts``
    is None or >= 0.
    """

    __slots__ = ("attempts", "initial", "max_attempts", "maximum", "rand")

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 10.0,
        max_attempts: int | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("backoff needs 0 < backoff_initial <= backoff_max")
        if max_attempts is not None and max_attempts < 0:
            raise ValueError("max_attempts must be None or >= 0")
        self.initial = initial
        self.maximum = maximum
        self.max_attempts = max_attempts
        self.rand = rand
        self.attempts = 0

    def next_delay(self) -> float | None:
        """The delay before the next attempt, counting it; None once attempts are used up."""
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            return None
        delay = backoff_delay(self.attempts, self.initial, self.maximum, self.rand)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start over: the next delay is again the one of attempt 0."""
        self.attempts = 0


def should_reconnect(code: int) -> bool:
    """True when a connection closed with ``code`` (by the server or the network)
    should be replaced; see the module docstring."""
    return code not in NO_RETRY_CODES


def should_retry_handshake(status: int | None) -> bool:
    """True when an upgrade refused with HTTP ``status`` may succeed later."""
    return status is None or status in (408, 429) or status >= 500
