"""Plain HTTP endpoints next to the WebSocket path: health, readiness, status.

:class:`Endpoints` maps a :class:`~fastcomm.http.types.Request` to a
:class:`~fastcomm.http.types.Response`; every transport serves it as is.
Other modules add routes (``/metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from fastcomm.contract.asyncapi import asyncapi_document
from fastcomm.http.metrics import metrics_endpoint
from fastcomm.http.types import Request, Response, header
from fastcomm.node.status import broker_state, status_snapshot
from fastcomm.web.assets import DEMO_PATH, DOCS_PATH, asset, asset_paths

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
    JavaScript client (``/fastcomm.js``...), with ``demo`` ``/demo`` and, with
    ``docs`` (the default), the app's contract: ``/asyncapi.json`` and ``/docs``.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.routes: dict[str, Endpoint] = {
            "/healthz": self.healthz,
            "/readyz": self.readyz,
            "/status": self.status,
            "/metrics": metrics_endpoint(node),
        }
        config = node.config
        for path in asset_paths(demo=config.demo, docs=config.docs):
            self.routes[path] = self._asset
        if config.docs:
            self.routes["/asyncapi.json"] = self.asyncapi
        self._asyncapi: tuple[tuple[str, int], bytes] | None = None

    def _asset(self, request: Request) -> Response:
        found = asset(request.path, demo=True, docs=True)  # the routes hold the paths allowed
        if found is None:
            return Response(404, b"404 not found\n")
        body, content_type = found
        if request.path in (DEMO_PATH, DOCS_PATH):
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
        """200 while accepting; 503 draining, and, with ``readyz_needs_broker``, 503
        while the broker is unreachable (by default a broker outage keeps it 200:
        every node shares the broker, and a balancer would drop them all)."""
        node = self.node
        if not node.accepting:
            return Response(503, b"draining\n", headers=_NO_STORE)
        if node.config.readyz_needs_broker and not broker_state(node.broker)["up"]:
            return Response(503, b"broker unavailable\n", headers=_NO_STORE)
        return Response(200, b"ready\n", headers=_NO_STORE)

    def status(self, request: Request) -> Response:
        body = _json.encode(status_snapshot(self.node))
        return Response(200, body, "application/json", _NO_STORE)

    def asyncapi(self, request: Request) -> Response:
        """The AsyncAPI 3 document of the app; the servers' host and port default to
        the request's ``Host`` (the last one asked for is kept: the app is fixed)."""
        config = self.node.config
        host, port = config.host, config.port
        named = header(request, "host") or ""
        name, _, number = named.rpartition(":")
        if name and number.isdigit() and "]" not in number:
            host, port = name, int(number)
        if self._asyncapi is None or self._asyncapi[0] != (host, port):
            spec = self.node.app.contract()
            api = f"http://{host}:{config.api_port or port}/api/openapi.json"  # picows: its own
            document = asyncapi_document(
                spec, host=host, port=port, path=config.path, openapi_url=api
            )
            self._asyncapi = ((host, port), _json.encode(document))
        return Response(200, self._asyncapi[1], "application/json", _ANY_ORIGIN)
