"""fastcomm's bench app as an ASGI application under uvicorn.

    python bench/baselines/fastcomm_uvicorn.py PORT

The same app and limits as the ``fastcomm`` server of ``bench/harness.py``
(rate limits out of the way, room for the connections), configured through
``FASTCOMM_*`` variables as the ASGI transport is; uvicorn with its defaults,
one worker, access log off, like ``fastapi_echo.py``.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

__all__ = ["main"]

_SETTINGS = {
    "FASTCOMM_RATE_LIMIT": "1e9",
    "FASTCOMM_RATE_BURST": "1000000000",
    "FASTCOMM_MAX_CONNECTIONS": "30000",
    "FASTCOMM_LOG_LEVEL": "warning",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    os.environ.update(_SETTINGS)
    uvicorn.run(
        "fastcomm.loadgen.app:app",
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
