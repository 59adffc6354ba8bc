"""Plain HTTP endpoints next to the WebSocket path: health, readiness, status.

:class:`Endpoints` maps a :class:`~fastcomm.http.types.Request` to a
:class:`~fastcomm.http.types.Response`; every transport serves it as is.
Other modules add routes (``/metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from fastcomm.http.metrics import metrics_endpoint
from fastcomm.http.types import Request, Response
from fastcomm.node.status import status_snapshot
from fastcomm.web.assets import DEMO_PATH, asset, asset_paths

if TYPE_CHECKING:
    from fastcomm.node.admission import Refuse
    from fastcomm.node.node import Node

__all__ = ["Endpoint", "Endpoints", "refusal"]

Endpoint = Callable[[Request], Response]
_json = msgspec.json.Encoder()
_NO_STORE = (("Cache-Control", "no-store"),)
_ANY_ORIGIN = (("Access-Control-Allow-Origin", "*"),)


def refusal(refuse: Refuse) -> Response:
    """The plain-text HTTP answer of a refused upgrade."""
    return Response(refuse.status, f"{refuse.status} {refuse.text}\n".encode())


class Endpoints:
    """Path -> endpoint of one node; GET (and HEAD) only, 404 for unknown paths.

    Built with ``/healthz``, ``/readyz``, ``/status``, ``/metrics``, the
    JavaScript client (``/fastcomm.js``...) and, with ``demo``, ``/demo``.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.routes: dict[str, Endpoint] = {
            "/healthz": self.healthz,
            "/readyz": self.readyz,
            "/status": self.status,
            "/metrics": metrics_endpoint(node),
        }
        for path in asset_paths(demo=node.config.demo):
            self.routes[path] = self._asset

    def _asset(self, request: Request) -> Response:
        found = asset(request.path, demo=True)  # the routes hold only the paths allowed
        if found is None:
            return Response(404, b"404 not found\n")
        body, content_type = found
        if request.path == DEMO_PATH:
            return Response(200, body, content_type)
        # Public files: a page on another origin may import the module from here.
        return Response(200, body, content_type, _ANY_ORIGIN)

    def __call__(self, request: Request) -> Response:
        endpoint = self.routes.get(request.path)
        if endpoint is None:
            return Response(404, b"404 not found\n")
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"405 method not allowed\n", headers=(("Allow", "GET"),))
        return endpoint(request)

    def healthz(self, request: Request) -> Response:
        return Response(200, b"ok\n", headers=_NO_STORE)

    def readyz(self, request: Request) -> Response:
        if self.node.accepting:
            return Response(200, b"ready\n", headers=_NO_STORE)
        return Response(503, b"draining\n", headers=_NO_STORE)

    def status(self, request: Request) -> Response:
        body = _json.encode(status_snapshot(self.node))
        return Response(200, body, "application/json", _NO_STORE)
