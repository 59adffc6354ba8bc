"""The examples of docs/HTTP-API.md are real: each request is answered 200 by HttpApi and
each response validates against the OpenAPI schema of its command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fastcomm.http.api import HttpApi
from fastcomm.http.openapi import COMMANDS, openapi_document
from fastcomm.http.types import Request
from tests.unit.test_http_api_backend import MemoryBackend

DOC = Path(__file__).parents[2] / "docs" / "HTTP-API.md"
SECTION = re.compile(r"^### (\w+)\n(.*?)(?=^## |^### |\Z)", re.M | re.S)
BLOCK = re.compile(r"```json (request|response)\n(.*?)\n```", re.S)


def examples() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, body in SECTION.findall(DOC.read_text()):
        blocks = {kind: json.loads(text) for kind, text in BLOCK.findall(body)}
        if blocks:
            found[name] = blocks
    return found


def test_every_command_has_a_request_and_a_response_example() -> None:
    found = examples()
    assert set(found) == set(COMMANDS)
    assert all(set(blocks) == {"request", "response"} for blocks in found.values())


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_the_example_request_is_accepted(command: str) -> None:
    backend = MemoryBackend()
    await backend.join("a1b2c3", "alice", "chat:lobby")
    api = HttpApi(backend, api_key="k", max_body=10_000)
    request = examples()[command]["request"]
    if command == "history":  # the example's epoch is made up: use the stream's
        request["since"]["epoch"] = (await backend.broker.position("chat:lobby")).epoch
    body = json.dumps(request).encode()
    response = await api.handle(Request("POST", f"/api/{command}", "", {"X-API-Key": "k"}, body))
    assert response.status == 200, response.body


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_example_response_has_the_documented_shape(command: str) -> None:
    doc = openapi_document()
    content = doc["paths"][f"/api/{command}"]["post"]["responses"]["200"]["content"]
    root = {**content["application/json"]["schema"], "components": doc["components"]}
    jsonschema.Draft202012Validator(root).validate(examples()[command]["response"])
