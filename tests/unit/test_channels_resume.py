"""Channels across a connection's life, without sockets: detach, resume, ordering.

Real connections on a real node (in-memory transport): subscriptions go in
as client messages, disconnects are the transport's, resumes are new
connections carrying the resume token.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fastcomm
from fastcomm.channels.handlers import Channels
from fastcomm.node.node import Node
from fastcomm.protocol.channel_messages import Subscribe, Unsubscribe
from tests.unit.memory import H, drain, make_node, offsets, open_conn, send


def channels_of(node: Node) -> Channels:
    channels: Channels = node.channels
    return channels


def gated() -> tuple[fastcomm.App, asyncio.Event]:
    """An app whose subscribe hook waits until the returned event is set."""
    gate = asyncio.Event()
    app = fastcomm.App()

    @app.authorize_subscribe
    async def slow(conn: Any, channel: str) -> bool:
        await gate.wait()
        return True

    return app, gate


async def test_detach_records_positions_and_resume_recovers_the_gap() -> None:
    node = make_node()
    channels = channels_of(node)
    conn, wire = await open_conn(node)
    send(wire, Subscribe(channel="a", id=1))
    send(wire, Subscribe(channel="b", id=2))
    await drain(node)
    for i in range(3):
        await channels.broker.publish("a", i, **H)
    assert len(await channels.broker.presence("a")) == 1
    wire.drop()
    await drain(node)
    epoch_a = (await channels.broker.position("a")).epoch
    # b had nothing (offset 0, which any epoch follows): its record keeps a name only
    assert conn.session.positions["a"] == (epoch_a, 3)
    assert conn.session.positions["b"][1] == 0
    record = conn.session.record("")
    assert (record.positions, record.quiet) == ({"a": (epoch_a, 3)}, "b")
    assert await channels.broker.presence("a") == []  # left at once
    assert channels.hub.count() == 0
    for i in range(2):
        await channels.broker.publish("a", i, **H)
    again, again_wire = await open_conn(node, resume=conn.session.resume_token)
    assert again.session_id == conn.session_id
    await drain(node)
    sent = again_wire.messages()
    by_channel = {m["channel"]: m for m in sent if m["type"] == "subscribed"}
    assert by_channel["a"]["recovered"] and by_channel["a"]["id"] is None
    assert by_channel["b"]["recovered"]
    assert offsets(again_wire) == [4, 5]
    assert len(await channels.broker.presence("a")) == 1  # rejoined


async def test_detach_forgets_a_subscription_that_never_got_subscribed() -> None:
    app, gate = gated()
    node = make_node(app)
    channels = channels_of(node)
    conn, wire = await open_conn(node)
    send(wire, Subscribe(channel="a", id=1))
    await asyncio.sleep(0)
    # Detached while the connection can still send: nothing may go out after it.
    channels.detached(conn)
    gate.set()
    await drain(node)
    assert conn.session.positions == {}
    assert wire.sent == []
    assert channels.hub.count() == 0
    assert await channels.broker.presence("a") == []


async def test_disconnect_during_subscribe_leaves_nothing_behind() -> None:
    app, gate = gated()
    node = make_node(app)
    channels = channels_of(node)
    conn, wire = await open_conn(node)
    send(wire, Subscribe(channel="a", id=1))
    await asyncio.sleep(0)
    wire.drop()
    gate.set()
    await drain(node)
    assert conn.session.positions == {}
    assert channels.hub.count() == 0
    assert await channels.broker.presence("a") == []


async def test_unsubscribe_during_subscribe_is_answered_after_it() -> None:
    app, gate = gated()
    node = make_node(app)
    channels = channels_of(node)
    conn, wire = await open_conn(node)
    send(wire, Subscribe(channel="a", id=1))
    send(wire, Unsubscribe(channel="a", id=2))
    await asyncio.sleep(0)
    assert wire.sent == []
    gate.set()
    await drain(node)
    assert [(m["type"], m["id"]) for m in wire.messages()] == [
        ("subscribed", 1),
        ("unsubscribed", 2),
    ]
    assert conn.session.positions == {}
    assert channels.hub.count() == 0


async def test_restore_refused_by_the_hook_pushes_unsubscribed() -> None:
    app = fastcomm.App()
    allowed = {"a": True, "b": True}
    app.authorize_subscribe(lambda conn, channel: allowed[channel])
    node = make_node(app)
    conn, wire = await open_conn(node)
    send(wire, Subscribe(channel="a", id=1))
    send(wire, Subscribe(channel="b", id=2))
    await drain(node)
    wire.drop()
    allowed["b"] = False
    again, again_wire = await open_conn(node, resume=conn.session.resume_token)
    await drain(node)
    assert {(m["type"], m["channel"]) for m in again_wire.messages()} == {
        ("subscribed", "a"),
        ("unsubscribed", "b"),
    }
    assert set(again.session.positions) == {"a"}


async def test_not_resumed_restores_nothing() -> None:
    node = make_node()
    conn, wire = await open_conn(node)
    conn.session.positions["a"] = ("E", 3)
    channels_of(node).attached(conn, False)
    await drain(node)
    assert wire.sent == []
    assert channels_of(node).hub.count() == 0
