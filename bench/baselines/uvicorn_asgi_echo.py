"""uvicorn with a bare ASGI echo app: the floor of fastcomm's ASGI transport on uvicorn.

    python bench/baselines/uvicorn_asgi_echo.py PORT

uvicorn's defaults (uvloop and its default WebSocket implementation when
installed), one worker, access log off; the app of ``asgi_echo.py`` (one
JSON decode and encode per message).
"""

from __future__ import annotations

import argparse

import uvicorn

from bench.baselines.asgi_echo import app

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
