"""Every message of a contract, once: its payload schema, its name and its role.

:func:`catalog` turns a :class:`~fastcomm.contract.spec.Spec` into shared JSON
Schema components (from :func:`msgspec.json.schema_components`, one per type)
and the list of requests (each with its replies) and pushes, built-in and the app's.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fastcomm.contract.spec import Spec, builtin_pushes, builtin_requests, tag_of
from fastcomm.protocol.messages import ErrorReply, Result

__all__ = ["Catalog", "Entry", "Operation", "catalog", "describe"]


@dataclass
class Entry:
    """One message: its key (the component name), ``type`` tag and description."""

    key: str
    tag: str
    description: str = ""
    builtin: bool = False


@dataclass
class Operation:
    """A request the server receives, with its replies (the last one is ``error``)."""

    request: Entry
    replies: list[Entry]
    description: str = ""
    result_key: str = ""  # the app's: the component of the handler's return value


@dataclass
class Catalog:
    """Components plus what refers to them."""

    components: dict[str, Any]
    requests: list[Operation] = field(default_factory=list)
    pushes: list[Entry] = field(default_factory=list)
    error: Entry | None = None

    def messages(self) -> dict[str, Entry]:
        """Every message by key, requests first, each once."""
        found: dict[str, Entry] = {}
        for op in self.requests:
            for entry in (op.request, *op.replies):
                found.setdefault(entry.key, entry)
        for entry in self.pushes:
            found.setdefault(entry.key, entry)
        return found


def describe(text: str | None) -> str:
    """A docstring as a description: dedented, ``:class:`X``` roles as plain code."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", inspect.cleandoc(text or ""))


def _doc(cls: type) -> str:
    return describe(cls.__dict__.get("__doc__"))


def _result_envelope(tag: str, data: Any) -> dict[str, Any]:
    return {
        "title": f"Result of {tag}",
        "description": f"The reply to a `{tag}` request: its handler's return value in `data`.",
        "type": "object",
        "properties": {"type": {"enum": ["result"]}, "id": {"type": "integer"}, "data": data},
        "required": ["type", "id", "data"],
    }


def catalog(spec: Spec, ref_template: str) -> Catalog:
    """The catalog of ``spec``; ``$ref`` values follow ``ref_template`` (``{name}``)."""
    builtins = builtin_requests()
    pushes = builtin_pushes()
    types: list[Any] = [ErrorReply, Result]
    for request, reply in builtins:
        types += [request, reply]
    types += pushes
    for req in spec.requests:
        types += [req.type, req.result]
    types += spec.pushes
    refs, components = msgspec.json.schema_components(types, ref_template=ref_template)
    prefix = ref_template.split("{name}")[0]
    names = [ref.get("$ref", "")[len(prefix) :] for ref in refs]
    key_of = dict(zip(map(id, types), names, strict=False))

    def entry(cls: type[msgspec.Struct], builtin: bool, description: str = "") -> Entry:
        return Entry(key_of[id(cls)], tag_of(cls), description or _doc(cls), builtin)

    error = entry(ErrorReply, True)
    codes = components[error.key]["properties"]["code"]
    codes["enum"] = spec.codes
    codes.setdefault("description", "Stable error code (docs/PROTOCOL.md).")
    result = entry(Result, True)
    out = Catalog(components, error=error)
    for request, reply in builtins:
        out.requests.append(Operation(entry(request, True), [entry(reply, True), error]))
    offset = 2 + 2 * len(builtins) + len(pushes)
    for index, req in enumerate(spec.requests):
        request_entry = entry(req.type, False)
        key = f"{request_entry.key}Result"
        while key in components:
            key += "_"
        components[key] = _result_envelope(request_entry.tag, refs[offset + 2 * index + 1])
        answer = Entry(key, result.tag, components[key]["description"])
        out.requests.append(
            Operation(request_entry, [answer, error], describe(req.description), result_key=key)
        )
    out.pushes = [entry(cls, True) for cls in pushes]
    out.pushes += [entry(cls, False) for cls in spec.pushes]
    return out
