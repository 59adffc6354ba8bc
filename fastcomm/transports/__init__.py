"""Transports: each one only moves bytes and maps its events onto the node.

``picows`` (the default and fastest), ``asgi`` (any ASGI server: uvicorn,
granian's ASGI interface, a FastAPI mount) and ``memory`` (in-process, for
tests) all drive the same :class:`~fastcomm.node.Node`. Import the one you
use; importing this package imports none of them.
"""

__all__: list[str] = []
