"""The contract's model: App metadata and pushes, the built-in protocol, JSON Schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest

import fastcomm
from fastcomm.config import build_config
from fastcomm.contract import asyncapi_document, jsonschema_document, typescript_module
from fastcomm.contract.asyncapi import to_draft7
from fastcomm.contract.spec import (
    BUILTIN_CODES,
    REPLIES,
    builtin_pushes,
    builtin_requests,
    result_type,
)
from fastcomm.contract.typescript import ts_type
from fastcomm.http.endpoints import Endpoints
from fastcomm.http.types import Request
from fastcomm.protocol import channel_messages, messages
from tests.contract_app import Card, Notice, OrderShipped, PlaceOrder
from tests.contract_app import app as orders
from tests.unit.memory import make_node


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


def test_an_app_without_arguments_has_default_metadata() -> None:
    app = fastcomm.App()
    spec = app.contract()
    assert (spec.title, spec.version, spec.description) == ("fastcomm app", "0.1.0", "")
    assert spec.requests == () and spec.pushes == ()
    assert spec.codes == list(BUILTIN_CODES)


def test_metadata_handlers_and_pushes_make_the_spec() -> None:
    spec = orders.contract()
    assert (spec.title, spec.version, spec.description) == (
        "Orders",
        "2.1.0",
        "Place and track orders.",
    )
    assert spec.pushes == (OrderShipped, Notice)
    place = spec.requests[0]
    assert (place.type, place.result, place.description) == (
        PlaceOrder,
        str,
        "Check stock, then store the order.",
    )
    assert spec.codes[-1] == "out_of_stock"


@pytest.mark.parametrize("bad", [int, "add", None])
def test_pushes_takes_only_struct_classes(bad: Any) -> None:
    with pytest.raises(TypeError, match="tagged on 'type'"):
        fastcomm.App().pushes(bad)


def test_pushes_refuses_reserved_and_repeated_tags() -> None:
    class Untagged(msgspec.Struct, tag_field="kind", tag="x"):
        pass

    class Plain(msgspec.Struct):
        pass

    class Welcome(fastcomm.ServerMessage, tag="welcome"):
        pass

    app = fastcomm.App()
    for bad in (Untagged, Plain):
        with pytest.raises(TypeError, match="needs a string tag"):
            app.pushes(bad)
    app.pushes(Card)  # any Struct tagged on "type"
    with pytest.raises(ValueError, match="reserved"):
        app.pushes(Welcome)
    app.pushes(Notice)
    with pytest.raises(ValueError, match="already declared"):
        app.pushes(Notice)


def test_every_protocol_request_has_its_reply_and_every_push_is_found() -> None:
    requests = dict(builtin_requests())
    assert requests == REPLIES  # a new request Struct must be paired with its reply
    assert set(builtin_pushes()) == {
        messages.Welcome,
        channel_messages.Publication,
        channel_messages.Join,
        channel_messages.Leave,
    }


def test_the_asyncapi_document_pairs_each_request_with_its_reply_and_error() -> None:
    app = fastcomm.App(title="Calc", version="1.0.0")

    @app.on(Add)
    async def add(msg: Add, conn: fastcomm.Connection) -> int:
        """Add two numbers."""
        return msg.a + msg.b

    doc = asyncapi_document(app.contract(), host="example.test", port=9000, path="/rt")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Calc"
    assert doc["servers"]["fastcomm"]["variables"]["port"]["default"] == "9000"
    assert "fastcomm.v1.msgpack" in doc["servers"]["fastcomm"]["description"]
    assert doc["info"]["externalDocs"]["url"] == "http://example.test:9000/api/openapi.json"
    channel = doc["channels"]["fastcomm"]
    assert channel["address"] == "/rt"
    op = doc["operations"]["add"]
    assert op["action"] == "receive" and op["description"] == "Add two numbers."
    replies = [ref["$ref"].rsplit("/", 1)[1] for ref in op["reply"]["messages"]]
    assert replies == ["AddResult", "ErrorReply"]
    schemas = doc["components"]["schemas"]
    assert schemas["AddResult"]["properties"]["data"] == {"type": "integer"}
    assert schemas["ErrorReply"]["properties"]["code"]["enum"] == list(BUILTIN_CODES)
    assert channel["messages"]["Add"]["correlationId"] == {
        "$ref": "#/components/correlationIds/requestId"
    }
    for tag in ("ping", "resume", "subscribe", "unsubscribe", "publish", "presence", "history"):
        assert doc["operations"][tag]["action"] == "receive", tag
    for tag in ("welcome", "message", "join", "leave"):
        assert doc["operations"][f"push_{tag}"]["action"] == "send", tag
    assert channel["messages"]["Pong"]["summary"] == "Reply to `Pong`.".replace("Pong", "Ping")


def test_to_draft7_rewrites_tuples_and_discriminators() -> None:
    schema = {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "items": False,
        "x": {"anyOf": [], "discriminator": {"propertyName": "type", "mapping": {}}},
    }
    assert to_draft7(schema) == {
        "type": "array",
        "items": [{"type": "string"}, {"type": "integer"}],
        "additionalItems": False,
        "x": {"anyOf": [], "discriminator": "type"},
    }


def _validator(name: str) -> jsonschema.Draft202012Validator:
    document = jsonschema_document(orders.contract())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator({**document, "$ref": f"#/$defs/{name}"})


def test_the_json_schema_accepts_what_the_server_encodes_and_rejects_the_rest() -> None:
    order = PlaceOrder(items=[], payment=Card(number="4242424242424242"), id=7)
    place = _validator("PlaceOrder")
    wire = msgspec.json.decode(msgspec.json.encode(order))
    assert list(place.iter_errors(wire)) == []
    assert list(place.iter_errors({**wire, "payment": {"type": "card", "number": "1"}}))
    assert list(place.iter_errors({**wire, "items": [{"sku": "ABC-1", "quantity": 0}]}))
    error = _validator("ErrorReply")
    assert list(error.iter_errors({"type": "error", "id": None, "code": "out_of_stock",
                                   "message": "none"})) == []  # fmt: skip
    assert list(error.iter_errors({"type": "error", "id": 1, "code": "nope", "message": ""}))


def test_constraints_examples_and_docstrings_carry_over() -> None:
    defs = jsonschema_document(orders.contract())["$defs"]
    quantity = defs["Item"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"], quantity["examples"]) == (1, 100, [3])
    assert defs["Item"]["description"] == "One line of an order."
    assert defs["PlaceOrder"]["properties"]["attachment"]["anyOf"][0]["contentEncoding"] == (
        "base64"
    )
    assert defs["GetOrderResult"]["properties"]["data"]["anyOf"][1] == {"type": "null"}


def test_result_types_come_from_return_annotations() -> None:
    def none(msg: Add, conn: Any) -> None: ...

    def bare(msg, conn):  # type: ignore[no-untyped-def]
        return 1

    def unresolvable(msg: Add, conn: Any) -> Missing:  # type: ignore[name-defined]  # noqa: F821
        raise AssertionError

    async def nested(msg: Add, conn: Any) -> list[Card] | None:
        return None

    assert result_type(none) is type(None)
    assert result_type(bare) is Any
    assert result_type(unresolvable) is Any
    assert result_type(nested) == (list[Card] | None)


def test_typescript_types_of_json_schemas() -> None:
    assert ts_type({}) == "unknown"
    assert ts_type({"$ref": "#/$defs/mod.Item"}) == "mod_Item"
    assert ts_type({"enum": ["a", 1]}) == '"a" | 1'
    assert ts_type({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == "number | null"
    assert ts_type({"type": ["string", "null"]}) == "string | null"
    assert ts_type(
        {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}}
    ) == ("(string | null)[]")
    assert ts_type({"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}]}) == (
        "[string, boolean]"
    )
    assert ts_type({"type": "object", "additionalProperties": {"type": "number"}}) == (
        "{ [key: string]: number }"
    )
    assert ts_type({"type": "object"}) == "{ [key: string]: unknown }"
    assert ts_type({"type": "object", "properties": {"a-b": {"type": "string"}}}) == (
        '{\n  "a-b"?: string;\n}'
    )


def test_typescript_module_of_an_app_without_handlers() -> None:
    text = typescript_module(fastcomm.App().contract())
    assert "export type Calls = {\n};" in text
    assert "export type Request = never;" in text and "export type Push = never;" in text
    assert "export interface Welcome {" in text  # the protocol's types are there too


def test_the_documents_are_the_same_bytes_each_time() -> None:
    first = msgspec.json.encode(asyncapi_document(orders.contract()))
    assert msgspec.json.encode(asyncapi_document(orders.contract())) == first


def _served(node: Any, host: str | None) -> dict[str, Any]:
    headers = {} if host is None else {"host": host}
    response = Endpoints(node)(Request("GET", "/asyncapi.json", "", headers))
    assert response.status == 200 and response.content_type == "application/json"
    document: dict[str, Any] = msgspec.json.decode(response.body)
    return document["servers"]["fastcomm"]["variables"]


async def test_the_served_document_takes_its_host_and_port_from_the_request() -> None:
    node = make_node(orders, host="0.0.0.0", path="/rt")
    variables = _served(node, "example.test:9000")
    assert (variables["host"]["default"], variables["port"]["default"]) == ("example.test", "9000")
    variables = _served(node, "[::1]:8080")
    assert (variables["host"]["default"], variables["port"]["default"]) == ("[::1]", "8080")
    for unusable in (None, "example.test", "[::1]", "example.test:http"):
        variables = _served(node, unusable)
        assert (variables["host"]["default"], variables["port"]["default"]) == ("0.0.0.0", "0")
    document = msgspec.json.decode(Endpoints(node)(Request("GET", "/asyncapi.json", "", {})).body)
    assert document["channels"]["fastcomm"]["address"] == "/rt"


async def test_without_docs_the_endpoints_have_neither_path() -> None:
    node = make_node(orders, docs=False)
    for path in ("/asyncapi.json", "/docs"):
        assert Endpoints(node)(Request("GET", path, "", {})).status == 404
    assert Endpoints(make_node(orders))(Request("GET", "/docs", "", {})).status == 200


def test_docs_is_a_setting_like_the_others(tmp_path: Any) -> None:
    assert build_config({}, env={}).docs is True
    assert build_config({}, env={"FASTCOMM_DOCS": "false"}).docs is False
    toml = tmp_path / "fastcomm.toml"
    toml.write_text("docs = false\n")
    assert build_config({}, env={}, config_file=str(toml)).docs is False


async def test_the_served_document_links_the_http_apis_own_port() -> None:
    request = Request("GET", "/asyncapi.json", "", {"host": "example.test:9000"})
    for options, url in (
        ({}, "http://example.test:9000/api/openapi.json"),
        ({"api_key": "k", "api_port": 9001}, "http://example.test:9001/api/openapi.json"),
    ):
        body = Endpoints(make_node(orders, **options))(request).body
        assert msgspec.json.decode(body)["info"]["externalDocs"]["url"] == url
