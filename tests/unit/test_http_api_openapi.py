"""The OpenAPI document: valid 3.1, one path per command, refs resolve, and real answers
of HttpApi validate against the schemas it declares."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest

from fastcomm.http.api import HttpApi
from fastcomm.http.openapi import COMMANDS, openapi_document
from fastcomm.http.types import Request
from tests.unit.test_http_api_backend import MemoryBackend

EXPECTED = {
    "publish",
    "broadcast",
    "presence",
    "presence_stats",
    "history",
    "disconnect",
    "unsubscribe",
    "channels",
    "info",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    api = HttpApi(MemoryBackend(), api_key="k", max_body=100)

    async def fetch() -> dict[str, Any]:
        response = await api.handle(Request("GET", "/api/openapi.json", "", {}, b""))
        return json.loads(response.body)  # type: ignore[no-any-return]

    return asyncio.run(fetch())


def test_the_served_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc == json.loads(json.dumps(openapi_document()))
    openapi_spec_validator.validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_every_command_has_a_post_path(doc: dict[str, Any]) -> None:
    assert set(COMMANDS) == EXPECTED
    assert set(doc["paths"]) == {f"/api/{c}" for c in EXPECTED} | {"/api/openapi.json"}
    for command in EXPECTED:
        operation = doc["paths"][f"/api/{command}"]["post"]
        assert operation["operationId"] == command
        assert {"200", "400", "401", "413", "500"} <= set(operation["responses"])
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []


def test_security_scheme_is_an_api_key_header(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes == {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    assert doc["security"] == [{"ApiKey": []}]


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs_in(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs_in(value)]
    return []


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    refs = refs_in(doc)
    assert len(refs) > 20
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.split("/")[-1] in doc["components"]["schemas"], ref


def validator(doc: dict[str, Any], path: str, status: str) -> Any:
    method = "get" if path == "/api/openapi.json" else "post"
    schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
    root = {**schema["schema"], "components": doc["components"]}
    return jsonschema.Draft202012Validator(root)


async def test_real_answers_conform_to_the_declared_schemas(doc: dict[str, Any]) -> None:
    backend = MemoryBackend()
    api = HttpApi(backend, api_key="k", max_body=1000)
    await backend.join("s1", "alice", "room", {"role": "x"})
    await backend.join("s2", None, "room")
    bodies = {
        "publish": {"channel": "room", "data": {"a": 1}},
        "broadcast": {"channels": ["room", "other"], "data": None},
        "presence": {"channel": "room"},
        "presence_stats": {"channel": "room"},
        "history": {"channel": "room", "limit": -1},
        "disconnect": {"user": "alice"},
        "unsubscribe": {"user": "bob", "channel": "room"},
        "channels": {"pattern": "r*"},
        "info": {},
    }
    assert set(bodies) == EXPECTED
    for command, body in bodies.items():
        path = f"/api/{command}"
        request = Request("POST", path, "", {"x-api-key": "k"}, json.dumps(body).encode())
        response = await api.handle(request)
        assert response.status == 200
        validator(doc, path, "200").validate(json.loads(response.body))
        wrong = await api.handle(request._replace(body=b"{"))
        assert wrong.status == 400
        validator(doc, path, "400").validate(json.loads(wrong.body))
        # and the request body itself is valid per the declared request schema
        request_schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        root = {**request_schema["schema"], "components": doc["components"]}
        jsonschema.Draft202012Validator(root).validate(body)
