"""A small fastcomm application: ``fastcomm serve examples/app.py:app``.

Try it with websocat::

    websocat "ws://127.0.0.1:8000/ws?token=alice"
    {"type":"add","id":1,"a":1,"b":2}
"""

from __future__ import annotations

import fastcomm

app = fastcomm.App()


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


class Shout(fastcomm.Message, tag="shout"):
    text: str


class Echoed(fastcomm.Message, tag="echoed"):
    """Pushed in answer to a ``shout``: its text in capitals."""

    text: str


app.pushes(Echoed)  # documented and typed in the contract (fastcomm schema, /docs)


@app.on_connect
def authenticate(request: fastcomm.ConnectRequest) -> fastcomm.Identity | None:
    """Anyone may connect; a token, if given, names the user."""
    if request.token == "":
        raise fastcomm.Rejected(401, "empty token")
    return fastcomm.Identity(user=request.token) if request.token else None


@app.on(Add)
async def add(msg: Add, conn: fastcomm.Connection) -> int:
    """Add two integers."""
    return msg.a + msg.b


@app.on(Shout)
def shout(msg: Shout, conn: fastcomm.Connection) -> None:
    conn.send(Echoed(text=msg.text.upper()))
