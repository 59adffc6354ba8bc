"""Who connects: the upgrade request a connect hook sees, and the identity it returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["ConnectRequest", "Identity"]


class Identity(msgspec.Struct, frozen=True):
    """Who a connection belongs to: ``user`` (None for anonymous) and metadata."""

    user: str | None = None
    meta: Any = None


class ConnectRequest(msgspec.Struct, frozen=True):
    """The upgrade request as a connect hook sees it.

    ``query`` holds the last value of each query parameter; ``headers`` is
    case-insensitive; ``token`` is the bearer token from the ``Authorization``
    header or the ``token`` query parameter, whichever is present (header first).
    """

    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    peer: tuple[str, int] | None
    token: str | None
