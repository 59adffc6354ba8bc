"""Raw picows client connections for the load generator.

The load generator talks to the server with bare picows listeners, not
:class:`fastcomm.Client`: per reply it does one small msgspec decode (the
``type`` field only) and one clock read, so that it is not the bottleneck.
Replies are expected unfragmented (every server measured here sends whole
messages in one frame). The server's CLOSE is answered and counted, and so is
a connection the server dropped without one (1006); the CLOSE that answers
our own is not a close *by the server*.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
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
    "server_closes",
]

L = TypeVar("L", bound="BaseListener")
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_SUBPROTOCOL = {"json": "fastcomm.v1.json", "msgpack": "fastcomm.v1.msgpack"}
_ABNORMAL = 1006  # RFC 6455: the connection was lost without a CLOSE frame


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
    """Counts failed connection attempts and keeps the first few reasons.

    ``statuses`` counts the HTTP statuses of refused upgrades (401, 403, 503...),
    so that a run against a protected app can say why nothing connected.
    """

    __slots__ = ("count", "reasons", "statuses")

    def __init__(self) -> None:
        self.count = 0
        self.reasons: list[str] = []
        self.statuses: dict[int, int] = {}

    def add(self, exc: BaseException) -> None:
        self.count += 1
        status = _refused_status(exc)
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            reason = f"handshake refused with HTTP {status}"
        else:
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
        if len(self.reasons) < 5 and reason not in self.reasons:
            self.reasons.append(reason)

    def counters(self) -> dict[str, float]:
        """``failed_conns`` and one ``refused_<status>`` counter per status seen."""
        counters: dict[str, float] = {"failed_conns": self.count}
        counters.update({f"refused_{s}": n for s, n in self.statuses.items()})
        return counters


def _refused_status(exc: BaseException) -> int | None:
    """The HTTP status of a refused upgrade (picows' WSInvalidStatusError), else None."""
    status = getattr(getattr(exc, "response", None), "status", None)
    try:
        return int(status) if status is not None and int(status) != 101 else None
    except (TypeError, ValueError):
        return None


class BaseListener(WSListener):
    """Common picows client behaviour: answer the server's CLOSE and disconnect.

    ``closed_by_server`` holds the close code the server sent first (1006 when
    it dropped the connection without a CLOSE), None while the connection is
    open or when this side closed it. Subclasses handle data frames in
    :meth:`on_data`.
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
            if not transport.is_close_frame_sent:
                # Not the answer to our CLOSE: the server ended the connection.
                self.closed_by_server = int(code.value)
                transport.send_close(code)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.closed_by_server is None and not transport.is_close_frame_sent:
            self.closed_by_server = _ABNORMAL

    def on_data(self, frame: WSFrame) -> None:
        """One data frame from the server (only valid during the call)."""


async def connect_one(
    url: str,
    factory: Callable[[], L],
    encoding: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> L:
    """Open one connection with the subprotocol of ``encoding`` and the extra
    ``headers`` (``--token``, ``--header``); raise on failure (any picows or OS error)."""
    _, listener = await ws_connect(
        factory,
        url,
        websocket_handshake_timeout=timeout,
        extra_headers={"Sec-WebSocket-Protocol": _SUBPROTOCOL[encoding], **(headers or {})},
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
    headers: Mapping[str, str] | None = None,
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
                listener = await connect_one(url, factory, encoding, timeout, headers)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none raised
                failures.add(exc)
                return
            if on_open is not None:
                on_open(listener, time.perf_counter() - start)
            opened.append(listener)

    await asyncio.gather(*(one() for _ in range(count)))
    return opened


def server_closes(listeners: Sequence[BaseListener | None]) -> dict[str, float]:
    """``closed_by_server`` and one ``closed_<code>`` counter per close code seen.

    Read it before :func:`close_all`, which ends the connections from this side.
    """
    counters: dict[str, float] = {"closed_by_server": 0}
    for listener in listeners:
        code = listener.closed_by_server if listener is not None else None
        if code is not None:
            counters["closed_by_server"] += 1
            counters[f"closed_{code}"] = counters.get(f"closed_{code}", 0) + 1
    return counters


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
