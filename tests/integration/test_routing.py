"""Typed routing over real sockets, with the third-party `websockets` client."""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import pytest
import websockets

import fastcomm
from tests.integration.conftest import running

app = fastcomm.App()


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


class Nested(fastcomm.Message, tag="nested"):
    items: list[int]


class Boom(fastcomm.Message, tag="boom"):
    pass


class Deny(fastcomm.Message, tag="deny"):
    pass


class Tell(fastcomm.Message, tag="tell"):
    text: str


@app.on(Add)
async def add(msg: Add, conn: fastcomm.Connection) -> int:
    return msg.a + msg.b


@app.on(Nested)
def nested(msg: Nested, conn: fastcomm.Connection) -> int:
    return sum(msg.items)


@app.on(Boom)
def boom(msg: Boom, conn: fastcomm.Connection) -> None:
    raise RuntimeError("database password is hunter2")


@app.on(Deny)
def deny(msg: Deny, conn: fastcomm.Connection) -> None:
    raise fastcomm.WireError("forbidden", "not for you")


@app.on(Tell)
def tell(msg: Tell, conn: fastcomm.Connection) -> None:
    conn.send(Tell(text=msg.text.upper()))


async def roundtrip(ws: Any, message: str) -> dict[str, Any]:
    await ws.send(message)
    return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def test_welcome_then_result_for_sync_and_async_handlers() -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome"
        assert welcome["protocol"] == "fastcomm.v1"
        assert welcome["resumed"] is False
        assert welcome["max_message_size"] == 1048576
        assert isinstance(welcome["session"], str) and welcome["session"]
        assert await roundtrip(ws, '{"type":"add","id":7,"a":1,"b":2}') == {
            "type": "result",
            "id": 7,
            "data": 3,
        }
        reply = await roundtrip(ws, '{"type":"nested","id":8,"items":[1,2,3]}')
        assert reply == {"type": "result", "id": 8, "data": 6}
        assert await roundtrip(ws, '{"type":"ping","id":9}') == {"type": "pong", "id": 9}


async def test_request_without_id_gets_no_success_reply() -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.send('{"type":"add","a":1,"b":2}')
        await ws.send('{"type":"ping"}')
        # The next reply is for the request that has an id.
        assert await roundtrip(ws, '{"type":"ping","id":1}') == {"type": "pong", "id": 1}


@pytest.mark.parametrize(
    ("frame", "code", "rid", "path"),
    [
        ("not json", "invalid_message", None, "$"),
        ("[1,2]", "invalid_message", None, "$"),
        ('{"id":4}', "invalid_message", 4, "$.type"),
        ('{"type":"add","id":5,"a":"x","b":2}', "invalid_message", 5, "$.a"),
        ('{"type":"add","id":6,"a":1}', "invalid_message", 6, "$"),
        ('{"type":"nested","id":7,"items":[1,"b"]}', "invalid_message", 7, "$.items[1]"),
        ('{"type":"nope","id":8}', "unknown_type", 8, "$.type"),
        ('{"type":"nope"}', "unknown_type", None, "$.type"),
    ],
)
async def test_bad_messages_get_errors_and_connection_stays_open(
    frame: str, code: str, rid: int | None, path: str
) -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        await ws.recv()
        reply = await roundtrip(ws, frame)
        assert reply["type"] == "error"
        assert reply["code"] == code
        assert reply["id"] == rid
        assert reply["details"]["path"] == path
        assert await roundtrip(ws, '{"type":"ping","id":99}') == {"type": "pong", "id": 99}


async def test_handler_exception_is_internal_without_detail(caplog: Any) -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        await ws.recv()
        with caplog.at_level(logging.ERROR, logger="fastcomm"):
            reply = await roundtrip(ws, '{"type":"boom","id":3}')
        assert reply["code"] == "internal"
        assert reply["id"] == 3
        assert "hunter2" not in json.dumps(reply)
        assert "Traceback" not in json.dumps(reply)
        correlation = reply["details"]["correlation_id"]
        assert any(correlation in r.getMessage() for r in caplog.records)
        assert await roundtrip(ws, '{"type":"ping","id":4}') == {"type": "pong", "id": 4}


async def test_wire_error_raised_by_handler_is_sent_as_is() -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        await ws.recv()
        reply = await roundtrip(ws, '{"type":"deny","id":1}')
        assert reply == {
            "type": "error",
            "id": 1,
            "code": "forbidden",
            "message": "not for you",
            "details": None,
        }


async def test_push_of_app_message_type() -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        await ws.recv()
        assert await roundtrip(ws, '{"type":"tell","text":"hi"}') == {"type": "tell", "text": "HI"}


async def test_msgpack_subprotocol_on_binary_frames() -> None:
    offered = ["fastcomm.v1.msgpack"]
    async with running(app) as server, websockets.connect(server.url, subprotocols=offered) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "fastcomm.v1.msgpack"
        welcome = msgspec.msgpack.decode(await ws.recv())
        assert welcome["type"] == "welcome"
        await ws.send(msgspec.msgpack.encode({"type": "add", "id": 1, "a": 2, "b": 3}))
        assert msgspec.msgpack.decode(await ws.recv()) == {"type": "result", "id": 1, "data": 5}
        await ws.send(b"\xc1")  # never used in MessagePack
        reply = msgspec.msgpack.decode(await ws.recv())
        assert reply["code"] == "invalid_message"
        await ws.send('{"type":"ping","id":2}')  # a TEXT frame on a msgpack connection
        reply = msgspec.msgpack.decode(await ws.recv())
        assert reply["code"] == "invalid_message"


async def test_json_is_default_and_offered_json_is_echoed() -> None:
    async with running(app) as server:
        async with websockets.connect(server.url) as ws:
            assert ws.subprotocol is None
            assert json.loads(await ws.recv())["type"] == "welcome"
        offered = ["x-unknown", "fastcomm.v1.json"]
        async with websockets.connect(server.url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "fastcomm.v1.json"


async def test_only_unknown_subprotocols_is_400() -> None:
    async with running(app) as server:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(server.url, subprotocols=["x-other"]):  # type: ignore[list-item]
                pass
        assert info.value.response.status_code == 400


async def test_binary_frame_on_json_connection_is_invalid_message() -> None:
    async with running(app) as server, websockets.connect(server.url) as ws:
        await ws.recv()
        await ws.send(b'{"type":"ping","id":1}')
        reply = json.loads(await ws.recv())
        assert reply["code"] == "invalid_message"


def test_registering_builtin_or_duplicate_types_is_refused() -> None:
    other = fastcomm.App()

    class Sneaky(fastcomm.Message, tag="ping"):
        pass

    with pytest.raises(ValueError, match="reserved"):
        other.on(Sneaky)
    other.on(Add)(add)
    with pytest.raises(ValueError, match="already"):
        other.on(Add)(add)
