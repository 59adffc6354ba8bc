"""Bare picows + msgspec server: the floor fastcomm is measured against.

    python bench/baselines/picows_echo.py PORT [--aiofastnet]

Per message it does the least a real server must: decode the request (JSON
in TEXT frames, MessagePack in BINARY frames) into a dict, build the reply,
encode it and send it. ``{"type":"bench_join"}`` adds the connection to a
broadcast group and ``{"type":"bench_publish","data":...}`` sends one
``message`` push, encoded once, to every member in a plain loop - the same
workload as fastcomm's bundled bench app, with none of its features.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import msgspec
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

__all__ = ["main"]

_decode: dict[WSMsgType, Callable[[bytes], Any]] = {
    WSMsgType.TEXT: msgspec.json.decode,
    WSMsgType.BINARY: msgspec.msgpack.decode,
}
_encode: dict[WSMsgType, Callable[[Any], bytes]] = {
    WSMsgType.TEXT: msgspec.json.encode,
    WSMsgType.BINARY: msgspec.msgpack.encode,
}
_members: dict[WSMsgType, set[WSTransport]] = {WSMsgType.TEXT: set(), WSMsgType.BINARY: set()}
_offset = [0]


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        decode = _decode.get(kind)
        if decode is None:
            return
        msg: Any = decode(frame.get_payload_as_bytes())
        mtype = msg.get("type")
        if mtype == "bench_publish":
            _offset[0] += 1
            push = {"type": "message", "channel": "bench", "offset": _offset[0], "epoch": ""}
            push["data"] = msg.get("data")
            for frame_type, members in _members.items():
                if members:
                    data = _encode[frame_type](push)
                    for member in members:
                        member.send(frame_type, data)
            return
        if mtype == "bench_join":
            _members[kind].add(transport)
            result: Any = True
        else:
            result = msg.get("data")
        transport.send(kind, _encode[kind]({"type": "result", "id": msg.get("id"), "data": result}))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for members in _members.values():
            members.discard(transport)


def _factory(request: WSUpgradeRequest) -> Echo:
    return Echo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aiofastnet", action="store_true", help="picows' default transport")
    args = parser.parse_args()

    async def serve() -> None:
        server = await ws_create_server(
            _factory, args.host, args.port, read_buffer_init_size=1024,
            use_aiofastnet=args.aiofastnet, backlog=4096,
        )  # fmt: skip
        await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
