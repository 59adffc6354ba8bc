"""fastcomm with every read handed to picows whole, without the frame-boundary scan.

    python bench/baselines/fastcomm_unscanned.py [fastcomm serve arguments]

The reference for the cost of ``fastcomm/transports/picows/reads.py`` on the
hot path: the same server and app as ``fastcomm serve``, with picows' own
``get_buffer``/``buffer_updated``. It fails Autobahn case 7.1.2; it exists
only to be measured against.
"""

from __future__ import annotations

import sys

from fastcomm.cli import main
from fastcomm.transports.picows import reads

__all__: list[str] = []

if __name__ == "__main__":
    del reads.FramedReads.get_buffer, reads.FramedReads.buffer_updated
    raise SystemExit(main(["serve", *sys.argv[1:]]))
