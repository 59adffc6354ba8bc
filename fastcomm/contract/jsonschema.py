"""One JSON Schema 2020-12 document with every message of an App in ``$defs``."""

from __future__ import annotations

from typing import Any

from fastcomm.contract.catalog import catalog
from fastcomm.contract.spec import Spec

__all__ = ["jsonschema_document"]


def jsonschema_document(spec: Spec) -> dict[str, Any]:
    """Every message schema in ``$defs``; the root accepts any one message."""
    cat = catalog(spec, "#/$defs/{name}")
    keys = list(cat.messages())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{spec.title} {spec.version} messages",
        "description": spec.description or f"The messages of {spec.title}.",
        "anyOf": [{"$ref": f"#/$defs/{key}"} for key in keys],
        "$defs": cat.components,
    }
