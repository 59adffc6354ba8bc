"""A connection's first moments (fastcomm.node.opening): the welcome waits for the session
store, messages sent meanwhile wait in a bounded buffer, and a connection that goes
before its welcome gives a claimed record back."""

from __future__ import annotations

import asyncio
import logging

import pytest

import fastcomm
from fastcomm.channels.memory import MemoryBroker
from fastcomm.node.opening import MAX_WAITING
from fastcomm.sessions.memory_store import MemorySessionStore
from fastcomm.sessions.record import SessionRecord
from fastcomm.transports.memory import connect
from tests.unit.memory import drain, make_node, open_conn, types


class GatedStore(MemorySessionStore):
    """Every save and claim waits for ``gate``; ``fail`` makes them raise."""

    local = False  # it waits: as a networked store does

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = False

    async def _wait(self) -> None:
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("store down")

    async def save(self, token: str, record: SessionRecord, ttl: float) -> None:
        await self._wait()
        await super().save(token, record, ttl)

    async def claim(self, token: str, user: str | None) -> SessionRecord | None:
        await self._wait()
        return await super().claim(token, user)


def gated() -> tuple[fastcomm.App, GatedStore]:
    broker = MemoryBroker()
    store = broker.sessions = GatedStore()
    app = fastcomm.App()
    app.use_broker(broker)
    return app, store


async def test_messages_before_the_welcome_wait_and_are_answered_in_order_after_it() -> None:
    app, store = gated()
    node = make_node(app)
    conn, wire = connect(node)
    for rid in (1, 2, 3):
        wire.receive(f'{{"type":"ping","id":{rid}}}'.encode())
    await asyncio.sleep(0.01)
    assert wire.messages() == []  # nothing before the welcome
    store.gate.set()
    await drain(node)
    sent = wire.messages()
    assert [m["type"] for m in sent] == ["welcome", "pong", "pong", "pong"]
    assert [m["id"] for m in sent[1:]] == [1, 2, 3]
    assert len(store) == 1 and conn.waiting is None


async def test_too_many_messages_before_the_welcome_close_with_1008() -> None:
    app, store = gated()
    node = make_node(app)
    _, wire = connect(node)
    for rid in range(MAX_WAITING + 1):
        wire.receive(f'{{"type":"ping","id":{rid}}}'.encode())
    assert wire.closed_with == (1008, b"too many messages before the welcome")
    store.gate.set()
    await drain(node)
    assert types(wire) == []  # closed: no welcome


async def test_the_bytes_waiting_for_the_welcome_are_bounded_too() -> None:
    app, store = gated()
    node = make_node(app, max_message_size=1000)
    _, wire = connect(node)
    wire.receive(b'{"type":"ping","id":1,"pad":"' + b"x" * 900 + b'"}')
    assert wire.closed_with is None
    wire.receive(b'{"type":"ping","id":2,"pad":"' + b"x" * 100 + b'"}')
    assert wire.closed_with is not None and wire.closed_with[0] == 1008
    store.gate.set()


async def test_a_connection_gone_during_its_claim_gives_the_record_back() -> None:
    app, store = gated()
    node = make_node(app)
    store.gate.set()
    first, _ = await open_conn(node)
    token = first.session.resume_token
    first.transport.abort()
    await drain(node)
    store.gate.clear()
    _conn, wire = connect(node, query=f"resume={token}")
    await asyncio.sleep(0)
    wire.drop()  # gone before the claim ends: the client never learned a new token
    store.gate.set()
    await drain(node)
    again, _ = await open_conn(node, resume=token)  # the same token still resumes
    assert again.session_id == first.session_id
    assert len(store) == 1  # the resumed session's record only


async def test_a_store_that_fails_still_lets_the_client_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, store = gated()
    store.fail = True
    store.gate.set()
    node = make_node(app)
    with caplog.at_level(logging.WARNING, "fastcomm.server"):
        _conn, wire = connect(node, query="resume=some-token")
        await drain(node)
    (welcome,) = wire.messages()
    assert welcome["type"] == "welcome" and welcome["resumed"] is False
    assert "session store failed" in caplog.text
    wire.receive(b'{"type":"ping","id":1}')
    assert wire.messages()[-1] == {"type": "pong", "id": 1}


async def test_messages_after_a_first_message_resume_wait_for_its_reply() -> None:
    app, store = gated()
    store.gate.set()
    node = make_node(app)
    old, _ = await open_conn(node)
    token = old.session.resume_token
    old.transport.abort()
    await drain(node)
    conn, wire = await open_conn(node)
    store.gate.clear()
    wire.receive(f'{{"type":"resume","id":1,"token":"{token}"}}'.encode())
    wire.receive(b'{"type":"ping","id":2}')
    await asyncio.sleep(0.01)
    assert wire.messages() == []
    store.gate.set()
    await drain(node)
    resumed, pong = wire.messages()
    assert (resumed["type"], resumed["resumed"], resumed["session"]) == (
        "resumed",
        True,
        old.session_id,
    )
    assert pong == {"type": "pong", "id": 2}
    assert conn.session_id == old.session_id


async def test_with_the_memory_store_the_welcome_goes_out_inside_attach() -> None:
    node = make_node()
    conn, wire = connect(node)  # no turn of the loop
    assert conn.waiting is None and types(wire) == ["welcome"]
    assert not node.router.inflight  # no task either
