"""A bare granian RSGI JSON endpoint: the floor of fastcomm's HTTP API.

    python bench/baselines/granian_rsgi_json.py PORT

One worker, uvloop. Every POST body is decoded as JSON and answered with a
``{"result": {"offset": n, "epoch": ...}}`` document, as ``/api/publish``
answers, with no key check, no channel and no broker: what is left is what
fastcomm's API adds.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec
from granian import Granian
from granian.constants import Interfaces, Loops
from granian.log import LogLevels

__all__ = ["app", "main"]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_HEADERS = [("content-type", "application/json")]
_state = {"offset": 0}


async def app(scope: Any, protocol: Any) -> None:
    body = await protocol()
    _decode(body)
    _state["offset"] += 1
    reply = {"result": {"offset": _state["offset"], "epoch": "bare"}}
    protocol.response_bytes(200, _HEADERS, _encode(reply))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    Granian(
        "bench.baselines.granian_rsgi_json:app",
        address=args.host,
        port=args.port,
        interface=Interfaces.RSGI,
        workers=1,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
    ).serve()


if __name__ == "__main__":
    main()
