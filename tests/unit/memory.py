"""Real connections for unit tests: a node that serves no socket, the in-memory transport.

:func:`make_node` builds a real :class:`~fastcomm.node.Node`; :func:`open_conn`
connects to it through admission and attach, as a network transport does,
and hands back the :class:`~fastcomm.sessions.connection.Connection` with its
:class:`~fastcomm.transports.memory.MemoryTransport` (welcome already read).
What the node sent is read back with ``transport.messages()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

import fastcomm
from fastcomm.config import build_config
from fastcomm.node.node import Node
from fastcomm.protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, Codec
from fastcomm.sessions.connection import Connection
from fastcomm.transports.memory import MemoryTransport, connect

_json, _msgpack = msgspec.json.Decoder(), msgspec.msgpack.Decoder()

__all__ = [
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "EncodeCounter",
    "H",
    "drain",
    "make_node",
    "offsets",
    "open_conn",
    "send",
    "types",
]

H: dict[str, Any] = {"history_size": 100, "history_ttl": 60.0}
"""History options of a test publication."""


def make_node(app: fastcomm.App | None = None, **options: Any) -> Node:
    """A node of ``app`` (an empty App by default) that accepts connections."""
    config = build_config({"port": 0, **options}, env={})
    node = Node(app if app is not None else fastcomm.App(), config)
    node.accepting = True
    return node


async def open_conn(
    node: Node, subprotocol: str = JSON_SUBPROTOCOL, *, resume: str | None = None
) -> tuple[Connection, MemoryTransport]:
    """Connect to ``node`` (resuming the session of token ``resume``, which must
    succeed); once welcomed, the welcome is checked and taken off the transport."""
    query = "" if resume is None else f"resume={resume}"
    conn, transport = connect(node, query=query, headers={"Sec-WebSocket-Protocol": subprotocol})
    while conn.waiting is not None:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the welcome's task is done: let it leave the router
    first = transport.sent[:1]
    del transport.sent[:1]  # what follows the welcome (restored subscriptions) stays
    welcome = [(_json if not binary else _msgpack).decode(data) for binary, data in first]
    assert [m["type"] for m in welcome] == ["welcome"], welcome
    assert welcome[0]["session"] == conn.session_id
    assert welcome[0]["resumed"] is (resume is not None)
    return conn, transport


def send(transport: MemoryTransport, msg: Any) -> None:
    """Deliver ``msg`` from the peer, encoded with the connection's codec."""
    assert transport.conn is not None
    transport.receive(transport.conn.codec.encode(msg))


async def drain(node: Node) -> None:
    """Wait until every task the router spawned (and those they spawned) is done."""
    while node.router.inflight:
        await asyncio.gather(*node.router.inflight)


def types(transport: MemoryTransport) -> list[str]:
    return [m["type"] for m in transport.messages()]


def offsets(transport: MemoryTransport) -> list[int]:
    """Offsets of the publications sent, in order."""
    return [m["offset"] for m in transport.messages() if m["type"] == "message"]


class EncodeCounter:
    """Counts the real encodes of ``codec`` (its ``encode`` is an instance attribute)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, codec: Codec) -> None:
        self.calls = 0
        encode = codec.encode

        def counting(msg: Any) -> bytes:
            self.calls += 1
            return encode(msg)

        monkeypatch.setattr(codec, "encode", counting)
