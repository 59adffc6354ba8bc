"""The files of :mod:`fastcomm.web` as HTTP bodies, read once from the package.

``asset(path)`` answers the URL paths the server serves on its port:
``/fastcomm.js``, ``/msgpack.js`` and ``/fastcomm.d.ts`` always, ``/demo``
only with ``demo=True`` (``fastcomm serve --demo``), ``/docs`` only with
``docs=True`` (the default of ``fastcomm serve``). Any other path is None.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["DEMO_PATH", "DOCS_PATH", "LIBRARY", "asset", "asset_paths"]

_JS = "text/javascript; charset=utf-8"

#: URL path -> (file in the package, content type) of the client library.
LIBRARY: dict[str, tuple[str, str]] = {
    "/fastcomm.js": ("fastcomm.js", _JS),
    "/msgpack.js": ("msgpack.js", _JS),
    "/fastcomm.d.ts": ("fastcomm.d.ts", "application/typescript; charset=utf-8"),
}

#: The URL path of the demo chat page.
DEMO_PATH = "/demo"
_DEMO = ("demo.html", "text/html; charset=utf-8")
#: The URL path of the contract's page (it reads ``asyncapi.json`` beside it).
DOCS_PATH = "/docs"
_DOCS = ("docs.html", "text/html; charset=utf-8")


@functools.cache
def _read(name: str) -> bytes:
    return resources.files("fastcomm.web").joinpath(name).read_bytes()


def asset(path: str, demo: bool = False, docs: bool = False) -> tuple[bytes, str] | None:
    """``(body, content type)`` served at URL ``path``, or None if nothing is."""
    entry = LIBRARY.get(path)
    if entry is None and demo and path == DEMO_PATH:
        entry = _DEMO
    if entry is None and docs and path == DOCS_PATH:
        entry = _DOCS
    if entry is None:
        return None
    name, content_type = entry
    return _read(name), content_type


def asset_paths(demo: bool = False, docs: bool = False) -> tuple[str, ...]:
    """The URL paths :func:`asset` answers with the same ``demo`` and ``docs`` flags."""
    return (*LIBRARY, *((DEMO_PATH,) if demo else ()), *((DOCS_PATH,) if docs else ()))
