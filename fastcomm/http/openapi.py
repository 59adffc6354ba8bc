"""The OpenAPI 3.1 document of the HTTP server API, generated from its msgspec types.

One ``POST /api/<command>`` path per command (request body, ``{"result": ...}``
on 200, ``{"error": ...}`` otherwise), ``GET /api/openapi.json`` (no key), and
the ``X-API-Key`` security scheme.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from fastcomm.http import api_messages as m

__all__ = ["COMMANDS", "Reply", "openapi_document"]

T = TypeVar("T")


class Reply(msgspec.Struct, Generic[T]):
    """A successful answer: ``{"result": ...}``."""

    result: T


COMMANDS: dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct], str]] = {
    "publish": (m.PublishRequest, m.PublishResult, "Publish data into a channel."),
    "broadcast": (
        m.BroadcastRequest,
        m.BroadcastResult,
        "Publish the same data into several channels; one response per channel, in order.",
    ),
    "presence": (m.ChannelRequest, m.PresenceResult, "Sessions present in a channel."),
    "presence_stats": (
        m.ChannelRequest,
        m.PresenceStatsResult,
        "Number of sessions and of distinct users present in a channel.",
    ),
    "history": (
        m.HistoryRequest,
        m.HistoryResult,
        "Retained publications of a channel and its stream position.",
    ),
    "disconnect": (
        m.DisconnectRequest,
        m.DisconnectResult,
        "Close the connections of a user or of one session.",
    ),
    "unsubscribe": (
        m.UnsubscribeRequest,
        m.UnsubscribeResult,
        "Unsubscribe every connection of a user from a channel.",
    ),
    "channels": (m.ChannelsRequest, m.ChannelsResult, "Channels with subscribers."),
    "info": (m.InfoRequest, m.InfoResult, "Statistics of this node."),
}
"""Command name -> (request type, result type, summary)."""

_ERRORS = {
    "400": "Bad request: malformed JSON, schema error, invalid channel, unknown command (107, 104)",
    "401": "Missing or wrong API key (101)",
    "405": "Wrong HTTP method (107)",
    "413": "Request body larger than the server's limit (106)",
    "500": "Internal error (100)",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document (a JSON-ready dict); every ``$ref`` resolves in it."""
    requests = [req for req, _, _ in COMMANDS.values()]
    replies = [Reply[res] for _, res, _ in COMMANDS.values()]  # type: ignore[valid-type]
    refs, components = msgspec.json.schema_components(
        [*requests, *replies, m.ErrorReply], ref_template="#/components/schemas/{name}"
    )
    count = len(COMMANDS)
    request_refs, reply_refs, error_ref = refs[:count], refs[count : 2 * count], refs[-1]
    errors = {status: _json(error_ref, text) for status, text in _ERRORS.items()}
    paths: dict[str, Any] = {}
    for (name, (_, _, summary)), request, reply in zip(
        COMMANDS.items(), request_refs, reply_refs, strict=True
    ):
        responses = {"200": _json(reply, "The command's result"), **errors}
        if name == "history":
            responses["416"] = _json(error_ref, "`since` is not recoverable (112)")
        paths[f"/api/{name}"] = {
            "post": {
                "operationId": name,
                "summary": summary,
                "requestBody": {  # an empty body counts as {}: optional if nothing is required
                    "required": bool(components[request["$ref"].rsplit("/", 1)[1]].get("required")),
                    "content": {"application/json": {"schema": request}},
                },
                "responses": responses,
            }
        }
    paths["/api/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document. No API key needed.",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document")},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fastcomm HTTP server API",
            "version": version,
            "description": "Centrifugo-shaped server API. Send the key as `X-API-Key: KEY` "
            "or `Authorization: apikey KEY`. See docs/HTTP-API.md.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{"ApiKey": []}],
    }
