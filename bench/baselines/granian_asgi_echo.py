"""granian's ASGI interface with a bare echo app: the floor of fastcomm on granian.

    python bench/baselines/granian_asgi_echo.py PORT

One worker, uvloop, the app of ``asgi_echo.py`` (one JSON decode and encode
per message); access log off.
"""

from __future__ import annotations

import argparse

from granian import Granian
from granian.constants import Interfaces, Loops
from granian.log import LogLevels

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    Granian(
        "bench.baselines.asgi_echo:app",
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
    ).serve()


if __name__ == "__main__":
    main()
