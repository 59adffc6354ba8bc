"""The published contract of an App: AsyncAPI 3, JSON Schema and TypeScript, from its types.

Above the protocol (whose Structs it reads) and below the app layer, which passes
a :class:`Spec`; the HTTP endpoints serve the documents, ``fastcomm schema`` prints them.
"""

from __future__ import annotations

from fastcomm.contract.asyncapi import asyncapi_document
from fastcomm.contract.jsonschema import jsonschema_document
from fastcomm.contract.spec import Request, Spec
from fastcomm.contract.typescript import typescript_module

__all__ = ["Request", "Spec", "asyncapi_document", "jsonschema_document", "typescript_module"]
