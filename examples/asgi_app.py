"""A small App served by any ASGI server, or by ``fastcomm serve``.

From the repository root::

    uvicorn --app-dir examples asgi_app:app --port 8000
    granian --interface asgi --working-dir examples --port 8000 asgi_app:app
    fastcomm serve examples/asgi_app.py:app --transport granian --port 8000

uvicorn comes with the ``asgi`` extra (``pip install ".[asgi]"``): a plain
``pip install uvicorn`` has no WebSocket library and its upgrades get 426.
Under uvicorn and granian the settings come from ``FASTCOMM_*`` variables
(``FASTCOMM_MAX_CONNECTIONS=100``) or the TOML file named by ``FASTCOMM_CONFIG``.
"""

from __future__ import annotations

import fastcomm

app = fastcomm.App()


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


@app.on(Add)
def add(msg: Add, conn: fastcomm.Connection) -> int:
    return msg.a + msg.b
