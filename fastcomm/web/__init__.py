"""The browser side of fastcomm: the JavaScript client and the demo page, as package data.

``fastcomm.js`` (the client, an ES module), ``msgpack.js`` (its MessagePack
codec), ``fastcomm.d.ts`` (TypeScript declarations) and ``demo.html`` are
served on the server port by :func:`fastcomm.web.assets.asset`.
"""

from fastcomm.web.assets import asset, asset_paths

__all__ = ["asset", "asset_paths"]
