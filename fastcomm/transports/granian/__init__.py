"""granian (RSGI) as a transport for plain HTTP: the HTTP API, embedded on the
running loop. (``fastcomm serve --transport granian`` runs the App on granian's
ASGI interface: :mod:`fastcomm.runners.granian`.)

:class:`RsgiHttp` adapts an endpoint to RSGI; :func:`serve_embedded` runs it
with granian's embedded server on the running event loop.
"""

from fastcomm.transports.granian.rsgi_http import EmbeddedServer, RsgiHttp, serve_embedded

__all__ = ["EmbeddedServer", "RsgiHttp", "serve_embedded"]
