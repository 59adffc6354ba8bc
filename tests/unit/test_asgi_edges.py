"""The ASGI application against a scripted ASGI server: what the app does with events
that uvicorn and granian seldom produce (no denial extension, a client gone before
the handshake or mid-body, a receive or send that raises, a cancelled task), and the
Transport contract once the connection is over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import fastcomm
from fastcomm.config import build_config
from fastcomm.sessions.connection import Connection
from fastcomm.transports.asgi import AsgiApp
from fastcomm.transports.asgi.handshake import DENIAL_EXTENSION
from tests.waiting import eventually

TIMEOUT = 5.0


class Script:
    """The ASGI server side of one scope: events to hand out, events sent back.
    ``fail_send`` makes ``send`` raise for events of that type (the peer is gone)."""

    def __init__(self, events: Iterable[dict[str, Any]] = ()) -> None:
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        for event in events:
            self.inbox.put_nowait(event)
        self.sent: list[dict[str, Any]] = []
        self.fail_send: str | None = None

    async def receive(self) -> Any:
        event = await self.inbox.get()
        if isinstance(event, BaseException):
            raise event
        return event

    async def send(self, event: Any) -> None:
        if event["type"] == self.fail_send:
            raise ConnectionResetError("peer gone")
        self.sent.append(dict(event))

    def types(self) -> list[str]:
        return [event["type"] for event in self.sent]


def ws_scope(path: str = "/ws", *, denial: bool = True, **extra: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": path,
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "subprotocols": [],
        "extensions": {DENIAL_EXTENSION: {}} if denial else {},
    }
    scope.update(extra)
    return scope


def make_asgi(app: fastcomm.App | None = None, **options: Any) -> AsgiApp:
    return AsgiApp(app or fastcomm.App(), build_config(options, env={}))


@asynccontextmanager
async def connection(
    asgi: AsgiApp, script: Script
) -> AsyncIterator[tuple[asyncio.Task[None], Connection]]:
    """A WebSocket scope of ``asgi`` running, once its connection is attached."""
    script.inbox.put_nowait({"type": "websocket.connect"})
    task = asyncio.get_running_loop().create_task(asgi(ws_scope(), script.receive, script.send))
    try:
        await eventually(lambda: asgi.node.connections, what="the connection is attached")
        (conn,) = asgi.node.connections
        yield task, conn
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asgi.shutdown()


# -- the handshake ------------------------------------------------------------------------


async def test_without_the_denial_extension_a_refusal_is_a_close_before_accept() -> None:
    app = fastcomm.App()

    @app.on_connect
    def connect(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
        raise fastcomm.Rejected(401, "missing token")

    asgi = make_asgi(app)
    for path in ("/ws", "/elsewhere"):  # refused by the hook, or not a WebSocket path
        script = Script([{"type": "websocket.connect"}])
        await asgi(ws_scope(path, denial=False), script.receive, script.send)
        assert script.sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    assert not asgi.node.connections
    await asgi.shutdown()


async def test_a_client_gone_before_the_handshake_gets_nothing() -> None:
    asgi = make_asgi()
    script = Script([{"type": "websocket.disconnect", "code": 1006}])
    await asyncio.wait_for(asgi(ws_scope(), script.receive, script.send), TIMEOUT)
    assert script.sent == []
    assert asgi.node.stats.connections_total == 0
    await asgi.shutdown()


async def test_a_client_gone_before_the_accept_is_written_leaves_no_connection() -> None:
    asgi = make_asgi()
    script = Script([{"type": "websocket.connect"}])
    script.fail_send = "websocket.accept"
    await asyncio.wait_for(asgi(ws_scope(), script.receive, script.send), TIMEOUT)
    assert not asgi.node.connections and asgi.node.stats.connections_total == 0
    await asgi.shutdown()


@pytest.mark.parametrize(
    ("client", "peer"),
    [
        (("10.0.0.1", "8080"), ("10.0.0.1", 8080)),  # granian gives the port as a string
        (("10.0.0.1", "not a port"), None),
        (None, None),
        (("unix-socket",), None),
    ],
)
async def test_the_connect_hook_sees_the_peer_when_the_server_gives_one(
    client: Any, peer: Any
) -> None:
    seen: list[Any] = []
    app = fastcomm.App()
    app.on_connect(lambda request: seen.append(request.peer))
    asgi = make_asgi(app)
    script = Script([{"type": "websocket.connect"}, {"type": "websocket.disconnect"}])
    await asyncio.wait_for(asgi(ws_scope(client=client), script.receive, script.send), TIMEOUT)
    assert seen == [peer]
    assert script.types()[0] == "websocket.accept"
    await asgi.shutdown()


async def test_a_stopped_app_is_not_started_again_by_requests() -> None:
    asgi = make_asgi()
    await asgi.shutdown()  # never started: just released
    script = Script([{"type": "websocket.connect"}])
    await asgi(ws_scope(), script.receive, script.send)
    assert script.sent[0] == {
        "type": "websocket.http.response.start",
        "status": 503,
        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
    }
    assert script.sent[1]["body"] == b"503 server is draining\n"
    assert not asgi.lifecycle.started


async def test_scopes_of_other_types_are_left_alone() -> None:
    asgi = make_asgi()
    script = Script()
    await asgi({"type": "webtransport", "path": "/ws"}, script.receive, script.send)
    assert script.sent == []
    await asgi.shutdown()


async def test_an_http_client_gone_in_the_middle_of_its_body_gets_no_answer() -> None:
    asgi = make_asgi()
    script = Script(
        [
            {"type": "http.request", "body": b'{"a":', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    scope = {"type": "http", "method": "POST", "path": "/status", "headers": []}
    await asyncio.wait_for(asgi(scope, script.receive, script.send), TIMEOUT)
    assert script.sent == []
    await asgi.shutdown()


# -- a connection whose server misbehaves -----------------------------------------------------


async def test_a_receive_that_raises_ends_the_connection_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asgi = make_asgi()
    script = Script()
    with caplog.at_level(logging.WARNING):
        async with connection(asgi, script) as (task, conn):
            script.inbox.put_nowait(OSError("the server lost the socket"))
            await asyncio.wait_for(task, TIMEOUT)  # no exception out of the app
            assert not asgi.node.connections and conn.closed
    assert asgi.node.sessions.stored() == 1  # resumable, as after any drop
    assert not caplog.records


async def test_a_send_that_raises_drops_the_outbox_and_the_disconnect_ends_it() -> None:
    asgi = make_asgi()
    script = Script()
    async with connection(asgi, script) as (task, conn):
        welcomed = ["websocket.accept", "websocket.send"]
        await eventually(lambda: script.types() == welcomed)
        script.fail_send = "websocket.send"
        assert await asgi.node.api.push(conn.session_id, {"type": "lost"}) == 1
        await eventually(lambda: conn.transport.buffered() == 0)  # dropped, not stuck
        script.inbox.put_nowait({"type": "websocket.disconnect", "code": 1006})
        await asyncio.wait_for(task, TIMEOUT)
        assert not asgi.node.connections
    assert script.types() == ["websocket.accept", "websocket.send"]


async def test_events_of_other_types_are_skipped_while_connected() -> None:
    asgi = make_asgi()
    script = Script()
    async with connection(asgi, script) as (task, _):
        script.inbox.put_nowait({"type": "websocket.connect"})  # not data: ignored
        script.inbox.put_nowait({"type": "websocket.receive", "text": '{"type":"ping","id":1}'})
        await eventually(lambda: len(script.sent) == 3)
        assert script.sent[2] == {"type": "websocket.send", "text": '{"type":"pong","id":1}'}
        assert not task.done()


async def test_cancelling_the_app_task_propagates_and_detaches() -> None:
    asgi = make_asgi()
    script = Script()
    async with connection(asgi, script) as (task, _):
        task.cancel()  # the ASGI server gives up on the scope
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not asgi.node.connections


async def test_once_the_connection_is_over_every_transport_call_is_a_no_op() -> None:
    asgi = make_asgi()
    script = Script()
    async with connection(asgi, script) as (task, conn):
        await eventually(lambda: len(script.sent) == 2)
        script.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, TIMEOUT)
        transport = conn.transport
        transport.writer(False)(b'{"type":"late"}')
        assert transport.buffered() == 0  # not even queued: no writer is left to send it
        transport.close(1000, b"late")
        transport.disconnect()
        transport.abort()
        assert script.types() == ["websocket.accept", "websocket.send"]
        assert not asgi.node.connections and asgi.node.stats.connections_total == 1


async def test_lifespan_events_of_other_types_are_ignored() -> None:
    asgi = make_asgi()
    script = Script(
        [
            {"type": "lifespan.startup"},
            {"type": "lifespan.something-new"},
            {"type": "lifespan.shutdown"},
        ]
    )
    await asyncio.wait_for(asgi({"type": "lifespan"}, script.receive, script.send), TIMEOUT)
    assert script.types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert asgi.lifecycle.started and asgi.lifecycle.stopped
