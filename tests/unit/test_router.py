"""Router without sockets: a recording connection stands in for the transport."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

import fastcomm
from fastcomm.protocol.codec import Codec
from fastcomm.protocol.messages import Ping
from fastcomm.routing.router import Router


class Recorder:
    """Just enough of a Connection for the router: a codec and a send log."""

    session_id = "s1"

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.sent: list[dict[str, Any]] = []

    def send_encoded(self, data: bytes) -> bool:
        self.sent.append(msgspec.json.decode(data))
        return True

    def send_error(self, rid: int | None, code: str, message: str, details: Any = None) -> None:
        self.send_encoded(self.codec.encode({"type": "error", "id": rid, "code": code}))


class Double(fastcomm.Message, tag="double"):
    n: int


class Later(fastcomm.Message, tag="later"):
    n: int


class Fail(fastcomm.Message, tag="fail"):
    wire: bool = False


class Weird(fastcomm.Message, tag="weird"):
    pass


def make_router() -> tuple[Router, Recorder]:
    router = Router()
    router.add_handler(Double, lambda msg, conn: msg.n * 2)

    async def later(msg: Later, conn: Any) -> int:
        await asyncio.sleep(0)
        return msg.n + 1

    def fail(msg: Fail, conn: Any) -> None:
        if msg.wire:
            raise fastcomm.WireError("forbidden", "no")
        raise KeyError("internal detail")

    router.add_handler(Later, later)
    router.add_handler(Fail, fail)
    router.add_handler(Weird, lambda msg, conn: object())  # not encodable
    codecs = router.freeze()
    return router, Recorder(codecs["fastcomm.v1.json"])


def test_sync_handler_result_and_ping() -> None:
    router, conn = make_router()
    router.dispatch(conn, b'{"type":"double","id":1,"n":21}')  # type: ignore[arg-type]
    router.dispatch(conn, b'{"type":"ping","id":2}')  # type: ignore[arg-type]
    router.dispatch(conn, b'{"type":"double","n":1}')  # type: ignore[arg-type]  # no id: no reply
    assert conn.sent == [
        {"type": "result", "id": 1, "data": 42},
        {"type": "pong", "id": 2},
    ]
    assert router.counts[Double] == 2


async def test_async_handler_is_tracked_until_done() -> None:
    router, conn = make_router()
    router.dispatch(conn, b'{"type":"later","id":5,"n":1}')  # type: ignore[arg-type]
    assert len(router.inflight) == 1
    await asyncio.gather(*router.inflight)
    assert conn.sent == [{"type": "result", "id": 5, "data": 2}]
    assert not router.inflight


@pytest.mark.parametrize(
    ("data", "code", "rid"),
    [
        (b'{"type":"fail","id":1}', "internal", 1),
        (b'{"type":"fail","id":2,"wire":true}', "forbidden", 2),
        (b'{"type":"weird","id":3}', "internal", 3),
        (b'{"type":"nope","id":4}', "unknown_type", 4),
        (b"{{", "invalid_message", None),
    ],
)
def test_failures_reply_with_error(data: bytes, code: str, rid: int | None) -> None:
    router, conn = make_router()
    router.dispatch(conn, data)  # type: ignore[arg-type]
    assert conn.sent == [{"type": "error", "id": rid, "code": code}]


def test_frozen_router_refuses_routes() -> None:
    router, _ = make_router()
    with pytest.raises(RuntimeError):
        router.add_handler(Double, lambda m, c: None)


def test_duplicate_route_refused() -> None:
    router = Router()
    with pytest.raises(ValueError):
        router.add(Ping, lambda m, c: None)
