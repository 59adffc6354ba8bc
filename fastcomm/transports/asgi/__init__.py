"""The ASGI transport: fastcomm behind any ASGI server (uvicorn, granian, a mount).

:class:`AsgiApp` is the ASGI application of one node; a
:class:`fastcomm.App` called as an ASGI app builds one from ``FASTCOMM_*``
settings. :class:`AsgiTransport` is the per-connection Transport (bounded
outbox, one writer task). See docs/TRANSPORTS.md.
"""

from fastcomm.transports.asgi.app import AsgiApp
from fastcomm.transports.asgi.connection import AsgiTransport

__all__ = ["AsgiApp", "AsgiTransport"]
