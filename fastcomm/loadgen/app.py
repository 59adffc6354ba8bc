"""The application the load generator serves when given no ``--url``/``--app``.

It is a plain :class:`fastcomm.App` (so the server does its full work:
validation, sessions, metrics) with three message types:

- ``echo`` ``{"data": any}``: the reply's ``data`` is the request's ``data``.
- ``bench_join``: adds the connection to the broadcast group (reply ``true``).
- ``bench_publish`` ``{"data": any}``: pushes
  ``{"type":"message","channel":"bench","offset":n,"epoch":"","data":...}`` to
  every member of the group, encoded once per encoding and sent with
  :meth:`Connection.send_encoded` - the shape of a channel publication, for
  servers without channels.

The broadcast group is module state: one bench server per process.
"""

from __future__ import annotations

from typing import Any

from fastcomm.app import App
from fastcomm.protocol.codec import Codec
from fastcomm.protocol.messages import Message, ServerMessage
from fastcomm.sessions.connection import Connection

__all__ = ["BenchJoin", "BenchPublish", "BenchPush", "Echo", "app"]


class Echo(Message, tag="echo"):
    data: Any = None


class BenchJoin(Message, tag="bench_join"):
    pass


class BenchPublish(Message, tag="bench_publish"):
    data: Any = None


class BenchPush(ServerMessage, tag="message"):
    channel: str
    offset: int
    epoch: str
    data: Any = None


app = App()
_groups: dict[Codec, set[Connection]] = {}
_offset = [0]


@app.on(Echo)
def echo(msg: Echo, conn: Connection) -> Any:
    return msg.data


@app.on(BenchJoin)
def join(msg: BenchJoin, conn: Connection) -> bool:
    _groups.setdefault(conn.codec, set()).add(conn)
    return True


@app.on(BenchPublish)
def publish(msg: BenchPublish, conn: Connection) -> int:
    offset = _offset[0] = _offset[0] + 1
    push = BenchPush("bench", offset, "", msg.data)
    for codec, members in _groups.items():
        data = codec.encode(push)
        for member in members:
            member.send_encoded(data)
    return offset


@app.on_disconnect
def leave(conn: Connection) -> None:
    members = _groups.get(conn.codec)
    if members is not None:
        members.discard(conn)
