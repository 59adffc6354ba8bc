"""The transport-independent HTTP request and response of fastcomm's endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["Request", "Response", "header"]


class Request(NamedTuple):
    """One HTTP request as a transport received it.

    ``path`` excludes the query string (``query``, undecoded, without ``?``);
    ``headers`` is case-insensitive where the transport allows, keys in any
    case otherwise (endpoints look up lower-case names through
    :func:`header`); ``body`` is the whole body, already bounded in size by
    the transport.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""


class Response(NamedTuple):
    """What an endpoint answers: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def header(request: Request, name: str) -> str | None:
    """The value of header ``name`` (any case) in ``request``, or None."""
    headers = request.headers
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value
