"""fastcomm with the routing-latency sampling taken out of ``Router.dispatch``.

    python bench/baselines/fastcomm_unmetered.py [fastcomm serve arguments]

The reference of the metrics-cost benchmark: the same server and app as
``fastcomm serve``, with ``dispatch`` as it was before the metrics hook. Any
difference in CPU per message against the stock server is the hook's cost.
"""

from __future__ import annotations

import sys
from typing import Any

from fastcomm.cli import main
from fastcomm.routing import router

__all__ = ["dispatch_without_metrics"]


def dispatch_without_metrics(self: router.Router, conn: Any, data: bytes) -> None:
    """``Router.dispatch`` without the routing-latency sampling."""
    try:
        msg = conn.codec.decode_raw(data)
    except router._DECODE_ERRORS as exc:
        self.reject(conn, data, exc)
        return
    cls = type(msg)
    self.counts[cls] += 1
    self.routes[cls](msg, conn)


if __name__ == "__main__":
    router.Router.dispatch = dispatch_without_metrics  # type: ignore[method-assign]
    raise SystemExit(main(["serve", *sys.argv[1:]]))
