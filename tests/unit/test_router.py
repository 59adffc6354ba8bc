"""Router without sockets: real connections on a real node, through the in-memory transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fastcomm
from fastcomm.client.codec import SERVER_TYPES
from fastcomm.node.node import Node
from fastcomm.protocol.messages import Ping
from fastcomm.routing.router import Router
from fastcomm.transports.memory import MemoryTransport, connect
from tests.unit.memory import make_node, open_conn


class Double(fastcomm.Message, tag="double"):
    n: int


class Later(fastcomm.Message, tag="later"):
    n: int


class Fail(fastcomm.Message, tag="fail"):
    wire: bool = False


class Weird(fastcomm.Message, tag="weird"):
    pass


async def make_router() -> tuple[Node, MemoryTransport]:
    app = fastcomm.App()
    app.on(Double)(lambda msg, conn: msg.n * 2)

    @app.on(Later)
    async def later(msg: Later, conn: Any) -> int:
        await asyncio.sleep(0)
        return msg.n + 1

    @app.on(Fail)
    def fail(msg: Fail, conn: Any) -> None:
        if msg.wire:
            raise fastcomm.WireError("forbidden", "no")
        raise KeyError("internal detail")

    app.on(Weird)(lambda msg, conn: object())  # not encodable
    node = make_node(app)
    _, transport = await open_conn(node)
    return node, transport


async def test_sync_handler_result_and_ping() -> None:
    node, wire = await make_router()
    wire.receive(b'{"type":"double","id":1,"n":21}')
    wire.receive(b'{"type":"ping","id":2}')
    wire.receive(b'{"type":"double","n":1}')  # no id: no reply
    assert wire.messages() == [
        {"type": "result", "id": 1, "data": 42},
        {"type": "pong", "id": 2},
    ]
    assert node.router.counts[Double] == 2


async def test_async_handler_is_tracked_until_done() -> None:
    node, wire = await make_router()
    router = node.router
    wire.receive(b'{"type":"later","id":5,"n":1}')
    assert len(router.inflight) == 1
    assert wire.sent == []
    await asyncio.gather(*router.inflight)
    assert wire.messages() == [{"type": "result", "id": 5, "data": 2}]
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
async def test_failures_reply_with_error(data: bytes, code: str, rid: int | None) -> None:
    node, wire = await make_router()
    wire.receive(data)
    [error] = wire.messages()
    assert (error["type"], error["id"], error["code"]) == ("error", rid, code)
    assert error["message"]
    if code == "internal":  # a correlation id, never the exception's text
        assert set(error["details"]) == {"correlation_id"}
        assert b"internal detail" not in wire.sent[0][1]
    assert node.stats.errors[code] == 1


async def test_frozen_router_refuses_routes() -> None:
    node, _ = await make_router()
    with pytest.raises(RuntimeError):
        node.router.add_handler(Double, lambda m, c: None)


def test_duplicate_route_refused() -> None:
    router = Router()
    with pytest.raises(ValueError):
        router.add(Ping, lambda m, c: None)


async def test_reserve_closes_a_paused_connection_over_its_outbound_limit() -> None:
    """Frames a transport sends by itself (PONG) count against max_outbound_buffer."""
    node = make_node(fastcomm.App(), max_outbound_buffer=1000)
    conn, transport = connect(node)
    assert conn.reserve(10_000)  # not paused: the socket takes it
    conn.paused, transport.pending = True, 990
    assert conn.reserve(10)
    assert not conn.reserve(11)
    assert transport.closed_with == (4008, b"slow consumer")
    assert node.stats.slow_consumers == 1


async def test_paused_connections_share_the_total_outbound_budget() -> None:
    node = make_node(fastcomm.App(), max_outbound_buffer=4096, max_total_outbound=3000)
    opened = [connect(node) for _ in range(3)]
    for conn, _ in opened:
        conn.set_paused(True)
    assert node.outbound.paused == 3
    (first, t1), (second, t2), (third, _) = opened
    t1.pending = t2.pending = 990  # each may hold 3000 // 3 = 1000 bytes now
    assert first.reserve(10)
    assert not first.reserve(11)
    assert t1.closed_with == (4008, b"slow consumer")
    third.set_paused(False)
    t1.drop()  # gone: no longer holds a share
    assert node.outbound.paused == 1
    assert second.reserve(3000 - 990)  # alone: the whole budget (less than its own limit)
    assert not second.reserve(3000 - 990 + 1)


def test_every_builtin_tag_is_reserved_for_applications() -> None:
    routed = make_node().router.routes
    tags = {str(cls.__struct_config__.tag) for cls in (*routed, *SERVER_TYPES)}
    for tag in sorted(tags):

        class Clash(fastcomm.Message, tag=tag):
            pass

        with pytest.raises(ValueError, match="reserved"):
            fastcomm.App().on(Clash)
