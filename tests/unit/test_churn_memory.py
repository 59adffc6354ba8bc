"""What a client churning connections can make a node hold: each connection subscribes
to 256 unique channels that are never published to, then drops. Python allocations are
counted with tracemalloc (exact, unlike RSS). Before the silent channels cost nothing in
the broker, one such connection left 86 KiB behind (65 KiB with ``session_ttl`` 0), for
``max(session_ttl, history_ttl) + 60`` seconds; bench/churn_memory.py measures both trees."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

from fastcomm.node.node import Node
from fastcomm.protocol.channel_messages import Subscribe
from tests.unit.memory import drain, make_node, open_conn, send

CHANNELS = 256
BEFORE_KIB = 86.5  # the same churn on the previous release (bench/churn_memory.py)


async def churn(node: Node, k: int) -> None:
    _conn, wire = await open_conn(node)
    for c in range(CHANNELS):
        send(wire, Subscribe(channel=f"u{k}:{c}", id=c + 1))
    await drain(node)
    assert node.channels.hub.count() == CHANNELS
    wire.drop()
    await drain(node)


async def retained(node: Node, connections: range) -> int:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for k in connections:
        await churn(node, k)
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


async def measured(**options: Any) -> tuple[Node, list[float]]:
    node = make_node(**options)
    await churn(node, -1)  # warm up
    tracemalloc.start()
    try:
        kib = [await retained(node, range(i * 30, i * 30 + 30)) / 30 / 1024 for i in range(2)]
    finally:
        tracemalloc.stop()
    await asyncio.sleep(0)
    return node, kib


async def test_a_dropped_connection_leaves_under_a_quarter_of_what_it_did() -> None:
    node, (first, _) = await measured(session_ttl=300)
    assert node.sessions.stored() == 61  # every session stays resumable
    assert node.channels.hub.count() == 0
    assert first < BEFORE_KIB / 4, f"{first:.1f} KiB per dropped connection"
    broker = node.broker
    assert getattr(broker, "streams", None) == 0  # silent channels: no stream at all


async def test_the_churn_stops_growing_at_the_cap_of_resumable_sessions() -> None:
    node, (first, second) = await measured(session_ttl=300, max_resumable_sessions=20)
    assert node.sessions.stored() == 20
    assert second < first / 4, f"{first:.1f} then {second:.1f} KiB per dropped connection"
