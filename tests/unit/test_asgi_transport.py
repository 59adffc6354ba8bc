"""The ASGI transport's outbox, writer task and receive loop, against a scripted ASGI peer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from multidict import CIMultiDict

import fastcomm
from fastcomm.config import build_config
from fastcomm.node.admission import Accept
from fastcomm.node.node import Node
from fastcomm.transports.asgi import AsgiTransport


class Peer:
    """The ASGI server side: ``send`` blocks while ``gate`` is closed (a full socket)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, event: Any) -> None:
        await self.gate.wait()
        self.sent.append(dict(event))

    async def receive(self) -> Any:
        return await self.inbox.get()

    def types(self) -> list[str]:
        return [e["type"] for e in self.sent]


@asynccontextmanager
async def connected(
    **options: Any,
) -> AsyncIterator[tuple[Node, AsgiTransport, Peer, asyncio.Task[None]]]:
    node = Node(fastcomm.App(), build_config(options, env={}))
    node.start()
    peer = Peer()
    accept = node.admission.upgrade("/ws", "", CIMultiDict(), ("127.0.0.1", 1))
    assert isinstance(accept, Accept)
    transport = AsgiTransport(node, peer.send, ("127.0.0.1", 1))
    task = asyncio.get_running_loop().create_task(transport.run(accept, peer.receive))
    await asyncio.sleep(0)
    try:
        yield node, transport, peer, task
    finally:
        task.cancel()
        await node.close()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_outbox_pauses_and_the_connection_closes_4008_at_the_limit() -> None:
    async with connected(max_outbound_buffer=1000, max_message_size=500) as (node, tr, peer, task):
        await settle()
        conn = tr.conn
        assert conn is not None
        assert peer.types() == ["websocket.send"] and not conn.paused  # the welcome went out
        peer.gate.clear()  # the peer stops reading
        sent = 0
        while conn.send_encoded(b'{"x":"' + b"y" * 94 + b'"}'):
            sent += 1
            assert conn.paused  # the outbox is not empty
            assert tr.buffered() <= 1000
        assert conn.closed and node.stats.slow_consumers == 1
        assert 8 <= sent <= 10
        peer.gate.set()
        await settle()
        # Everything queued goes out in order, then the close.
        assert peer.types()[-1] == "websocket.close"
        assert peer.sent[-1] == {"type": "websocket.close", "code": 4008, "reason": "slow consumer"}
        assert peer.types()[:-1] == ["websocket.send"] * (len(peer.sent) - 1)
        assert tr.buffered() == 0 and not conn.paused
        peer.inbox.put_nowait({"type": "websocket.disconnect", "code": 4008})
        await asyncio.wait_for(task, 5)
        assert not node.connections


async def test_messages_are_routed_with_their_frame_type_and_size_is_checked() -> None:
    async with connected(max_message_size=100) as (node, _, peer, task):
        peer.inbox.put_nowait({"type": "websocket.receive", "text": '{"type":"ping","id":1}'})
        peer.inbox.put_nowait({"type": "websocket.receive", "bytes": b'{"type":"ping","id":2}'})
        await settle()
        texts = [e.get("text") for e in peer.sent if e["type"] == "websocket.send"]
        assert texts[1] == '{"type":"pong","id":1}'
        assert '"invalid_message"' in texts[2] and "binary frames" in texts[2]
        peer.inbox.put_nowait({"type": "websocket.receive", "text": "x" * 101})
        await asyncio.wait_for(task, 5)  # 1009, then the connection ends
        close = {"type": "websocket.close", "code": 1009, "reason": "message too big"}
        assert peer.sent[-1] == close
        assert not node.connections


async def test_abort_drops_the_queue_and_ends_the_connection() -> None:
    async with connected() as (node, tr, peer, task):
        peer.gate.clear()
        await settle()
        assert tr.conn is not None
        tr.conn.send({"type": "blob"})
        assert tr.buffered() > 0
        tr.abort()
        await asyncio.wait_for(task, 5)
        assert tr.buffered() == 0 and not node.connections
        tr.conn.send({"type": "late"})  # a no-op once gone
        peer.gate.set()
        await settle()
        assert "websocket.close" not in peer.types()
        assert tr.ping() is False
