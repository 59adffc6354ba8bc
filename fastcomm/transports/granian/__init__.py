"""granian (RSGI) as a transport: plain HTTP endpoints served by granian.

:class:`RsgiHttp` adapts an endpoint to RSGI; :func:`serve_embedded` runs it
with granian's embedded server on the running event loop.
"""

from fastcomm.transports.granian.rsgi_http import EmbeddedServer, RsgiHttp, serve_embedded

__all__ = ["EmbeddedServer", "RsgiHttp", "serve_embedded"]
