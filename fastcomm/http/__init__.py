"""Plain HTTP served next to the WebSocket endpoint, as data in and data out.

Every transport maps its own HTTP events onto :class:`Request` and answers
with the :class:`Response` an endpoint returns; nothing here does I/O.
"""

from fastcomm.http.types import Request, Response

__all__ = ["Request", "Response"]
