"""The AsyncAPI 3.0 document of an App, from the server's point of view.

The WebSocket endpoint is one channel. Each request type is a ``receive``
operation with its reply (request/reply, correlated by ``id``); pushes are
``send`` operations. Payload schemas are the catalog's JSON Schema 2020-12
components, converted to AsyncAPI Schema (a superset of draft-07).
"""

from __future__ import annotations

from typing import Any

from fastcomm.contract.catalog import Entry, catalog
from fastcomm.contract.spec import Spec
from fastcomm.protocol.messages import PROTOCOL_VERSION
from fastcomm.version import __version__

__all__ = ["SUBPROTOCOLS", "asyncapi_document", "to_draft7"]

SUBPROTOCOLS = (f"{PROTOCOL_VERSION}.json", f"{PROTOCOL_VERSION}.msgpack")
_SCHEMAS = "#/components/schemas/"
_CHANNEL = "fastcomm"
_CORRELATION = {"$ref": "#/components/correlationIds/requestId"}
_MSGPACK = (
    "With the MessagePack subprotocol the same messages are MessagePack maps; `bytes` "
    "are MessagePack bin (base64 strings in JSON) and datetimes the timestamp "
    "extension (RFC 3339 strings in JSON)."
)


def to_draft7(schema: Any) -> Any:
    """A msgspec (JSON Schema 2020-12) schema as AsyncAPI Schema (draft-07 keywords)."""
    if isinstance(schema, list):
        return [to_draft7(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: to_draft7(value) for key, value in schema.items()}
    if "prefixItems" in out:
        out["additionalItems"] = out.pop("items", True)
        out["items"] = out.pop("prefixItems")
    discriminator = out.get("discriminator")
    if isinstance(discriminator, dict):
        out["discriminator"] = discriminator["propertyName"]
    return out


def _message(entry: Entry, correlated: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": entry.tag,
        "title": entry.key,
        "payload": {"$ref": _SCHEMAS + entry.key},
    }
    if entry.description:
        message["summary"] = entry.description.splitlines()[0]
        message["description"] = entry.description
    if correlated:
        message["correlationId"] = _CORRELATION
    if entry.builtin:
        message["tags"] = [{"name": "protocol"}]
    return message


def _ref(key: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{_CHANNEL}/messages/{key}"}


def asyncapi_document(
    spec: Spec,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/ws",
    openapi_url: str | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a JSON-ready dict) of ``spec`` served at ``path``;
    ``openapi_url`` (default: ``/api/openapi.json`` on ``host:port``) links the HTTP API."""
    cat = catalog(spec, _SCHEMAS + "{name}")
    correlated = {entry.key for op in cat.requests for entry in (op.request, *op.replies)}
    messages = {key: _message(entry, key in correlated) for key, entry in cat.messages().items()}
    channel = {"$ref": f"#/channels/{_CHANNEL}"}
    operations: dict[str, Any] = {}
    for op in cat.requests:
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": channel,
            "title": op.request.key,
            "messages": [_ref(op.request.key)],
            "reply": {"channel": channel, "messages": [_ref(r.key) for r in op.replies]},
        }
        description = op.description or op.request.description
        if description:
            operation["summary"] = description.splitlines()[0]
            operation["description"] = description
        if op.request.builtin:
            operation["tags"] = [{"name": "protocol"}]
        operations[op.request.tag] = operation
    for entry in cat.pushes:
        push: dict[str, Any] = {"action": "send", "channel": channel, "messages": [_ref(entry.key)]}
        if entry.description:
            push["summary"] = entry.description.splitlines()[0]
        if entry.builtin:
            push["tags"] = [{"name": "protocol"}]
        operations[f"push_{entry.tag}"] = push
    info: dict[str, Any] = {
        "title": spec.title,
        "version": spec.version,
        "description": (spec.description + "\n\n" if spec.description else "") + _MSGPACK,
        "externalDocs": {
            "description": "The HTTP server API (OpenAPI 3.1), when the server has one",
            "url": openapi_url or f"http://{host}:{port}/api/openapi.json",
        },
        "tags": [{"name": "protocol", "description": f"Built into {PROTOCOL_VERSION}"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": info,
        "x-fastcomm-version": __version__,
        "defaultContentType": "application/json",
        "servers": {
            "fastcomm": {
                "host": "{host}:{port}",
                "protocol": "ws",
                "description": "Subprotocols (Sec-WebSocket-Protocol): "
                + ", ".join(SUBPROTOCOLS)
                + "; the first frame is a `welcome`.",
                "variables": {
                    "host": {"default": host, "description": "the server's host"},
                    "port": {"default": str(port), "description": "the server's port"},
                },
            }
        },
        "channels": {
            _CHANNEL: {
                "address": path,
                "title": "WebSocket endpoint",
                "description": "Every message travels on the one WebSocket connection; "
                "`type` names the message, `id` pairs a request with its reply.",
                "servers": [{"$ref": "#/servers/fastcomm"}],
                "messages": messages,
                "bindings": {"ws": _BINDING},
            }
        },
        "operations": operations,
        "components": {
            "schemas": to_draft7(cat.components),
            "correlationIds": {
                "requestId": {
                    "description": "A request's `id`, echoed by its one reply.",
                    "location": "$message.payload#/id",
                }
            },
        },
    }


_BINDING: dict[str, Any] = {
    "method": "GET",
    "query": {
        "type": "object",
        "properties": {"token": {"type": "string", "description": "passed to the connect hook"}},
    },
    "headers": {
        "type": "object",
        "properties": {
            "Sec-WebSocket-Protocol": {"type": "string", "enum": list(SUBPROTOCOLS)},
            "Fastcomm-Resume": {"type": "string", "description": "a resume token"},
        },
    },
    "bindingVersion": "0.1.0",
}
