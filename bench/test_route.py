"""In-process route of a small message: decode, validate, dispatch, handle, encode, send.

Gate: median per message <= ROUTE_RATIO x bare msgspec decode + encode of the
same message (timed in alternation in the same run); hard floor 10 ms; the
absolute 2 µs target is asserted in the full profile.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bench.budgets import ROUTE_FLOOR_S, ROUTE_RATIO, ROUTE_TARGET_S
from bench.inprocess import fake_connection, interleaved_timing, server
from bench.profiles import Profile

PAYLOAD = b'{"type":"echo","id":7,"data":"' + b"x" * 64 + b'"}'


def test_route_small_message(benchmark: Any, profile: Profile) -> None:
    srv = server()
    conn = fake_connection(srv)
    route = srv._route
    decode, encode = msgspec.json.decode, msgspec.json.encode

    def fastcomm_route() -> None:
        route(conn, False, PAYLOAD)

    def bare_msgspec() -> None:
        msg = decode(PAYLOAD)
        encode({"type": "result", "id": msg.get("id"), "data": msg.get("data")})

    medians = interleaved_timing(
        {"fastcomm": fastcomm_route, "msgspec": bare_msgspec}, profile.number, profile.repeat
    )
    benchmark.pedantic(fastcomm_route, iterations=profile.number, rounds=profile.repeat)
    ratio = medians["fastcomm"] / medians["msgspec"]
    benchmark.extra_info.update(
        median_us=medians["fastcomm"] * 1e6,
        msgspec_median_us=medians["msgspec"] * 1e6,
        ratio=ratio,
    )
    print(
        f"\nroute: {medians['fastcomm'] * 1e6:.3f} µs/message, bare msgspec "
        f"{medians['msgspec'] * 1e6:.3f} µs, ratio {ratio:.2f} (gate {ROUTE_RATIO})"
    )
    assert conn.transport.count > 0  # type: ignore[attr-defined]
    assert medians["fastcomm"] < ROUTE_FLOOR_S
    assert ratio <= ROUTE_RATIO, f"route costs {ratio:.2f}x bare msgspec (budget {ROUTE_RATIO})"
    if profile.name == "full":
        assert medians["fastcomm"] <= ROUTE_TARGET_S
