"""Raw picows client connections for the load generator.

The load generator talks to the server with bare picows listeners, not
:class:`fastcomm.Client`: per reply it does one small msgspec decode (the
``type`` field only) and one clock read, so that it is not the bottleneck.
Replies are expected unfragmented (every server measured here sends whole
messages in one frame). The server's CLOSE is answered and counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = [
    "BaseListener",
    "Failures",
    "close_all",
    "connect_one",
    "decoder_for",
    "encode_for",
    "frame_type_for",
    "open_many",
]

L = TypeVar("L", bound="BaseListener")
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_SUBPROTOCOL = {"json": "fastcomm.v1.json", "msgpack": "fastcomm.v1.msgpack"}


class Head(msgspec.Struct):
    """What the load generator reads of a server message: its ``type``."""

    type: str = ""


def decoder_for(encoding: str, kind: type[Any] = Head) -> Callable[[Any], Any]:
    """A decode function for ``kind`` in ``encoding`` (``json`` or ``msgpack``)."""
    if encoding == "msgpack":
        return msgspec.msgpack.Decoder(kind).decode
    return msgspec.json.Decoder(kind).decode


def encode_for(encoding: str) -> Callable[[Any], bytes]:
    """The encode function of ``encoding``."""
    return msgspec.msgpack.encode if encoding == "msgpack" else msgspec.json.encode


def frame_type_for(encoding: str) -> WSMsgType:
    return _BINARY if encoding == "msgpack" else _TEXT


class Failures:
    """Counts failed connection attempts and keeps the first few reasons."""

    __slots__ = ("count", "reasons")

    def __init__(self) -> None:
        self.count = 0
        self.reasons: list[str] = []

    def add(self, exc: BaseException) -> None:
        self.count += 1
        if len(self.reasons) < 5:
            self.reasons.append(f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200])


class BaseListener(WSListener):
    """Common picows client behaviour: answer the server's CLOSE and disconnect.

    ``closed_by_server`` holds the close code the server sent, if any.
    Subclasses handle data frames in :meth:`on_data`.
    """

    __slots__ = ("closed_by_server", "transport")

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.closed_by_server: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _TEXT or msg_type is _BINARY:
            self.on_data(frame)
        elif msg_type is _CLOSE:
            code = frame.get_close_code()
            self.closed_by_server = int(code.value)
            if not transport.is_close_frame_sent:
                transport.send_close(code)
            transport.disconnect()

    def on_data(self, frame: WSFrame) -> None:
        """One data frame from the server (only valid during the call)."""


def _headers(encoding: str) -> dict[str, str]:
    return {"Sec-WebSocket-Protocol": _SUBPROTOCOL[encoding]}


async def connect_one(url: str, factory: Callable[[], L], encoding: str, timeout: float) -> L:
    """Open one connection; raise on failure (any picows or OS error)."""
    _, listener = await ws_connect(
        factory,
        url,
        websocket_handshake_timeout=timeout,
        extra_headers=_headers(encoding),
        read_buffer_init_size=4096,
        max_frame_size=64 * 1024 * 1024,
    )
    return listener  # type: ignore[return-value]


async def open_many(
    url: str,
    factory: Callable[[], L],
    count: int,
    *,
    encoding: str,
    concurrency: int,
    timeout: float,
    failures: Failures,
    on_open: Callable[[L, float], None] | None = None,
) -> list[L]:
    """Open ``count`` connections, at most ``concurrency`` handshakes at a time.

    Failures are counted in ``failures``, never raised. ``on_open(listener,
    seconds)`` is called with each connection's establishment time.
    """
    gate = asyncio.Semaphore(max(1, concurrency))
    opened: list[L] = []

    async def one() -> None:
        async with gate:
            start = time.perf_counter()
            try:
                listener = await connect_one(url, factory, encoding, timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none raised
                failures.add(exc)
                return
            if on_open is not None:
                on_open(listener, time.perf_counter() - start)
            opened.append(listener)

    await asyncio.gather(*(one() for _ in range(count)))
    return opened


async def close_all(listeners: Sequence[BaseListener], timeout: float = 5.0) -> None:
    """Send CLOSE on every open connection and wait (bounded) for the disconnects."""
    transports = [lst.transport for lst in listeners if lst.transport is not None]
    for transport in transports:
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
    waits = [asyncio.ensure_future(t.wait_disconnected()) for t in transports]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for task in pending:
            task.cancel()
    for transport in transports:
        transport.disconnect(False)
