"""Seeded generators of hostile WebSocket input, and one fuzz connection.

:func:`fuzz_connection` opens a raw connection, sends a seeded random series
of :func:`action` steps (random and mutated frames, see test_fuzz.py), then
a ``ping`` probe, and reports how the connection ended: ``answering`` (the
probe was answered), a close code, or what happened after our FIN when the
frame boundaries were lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import struct
from typing import Any

import msgspec

from tests.integration.rawws import RawWS

__all__ = ["MAX_MESSAGE", "UNFRAMED", "frame", "fuzz_connection", "nested"]

MAX_MESSAGE = 64 * 1024  # the fuzzed server's max_message_size


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True,
    length: int | None = None,
) -> bytes:  # fmt: skip
    """One frame; ``length`` overrides the declared payload length (a lie)."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    bit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    # XOR as one big integer: a byte loop would stall the loop the server shares.
    stream = (key * (len(payload) // 4 + 1))[: len(payload)]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        len(payload), "big"
    )
    return head + key + masked


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**63, -(2**64), 1e308, 0.5])
    if kind == 2:
        return rng.randrange(-(2**40), 2**40)
    if kind == 3:
        return "".join(chr(rng.randrange(0x20, 0x2FF)) for _ in range(rng.randrange(8)))
    if kind == 4:
        return rng.choice(["ping", "echo", "subscribe", "", "\u0000", "x" * 300])
    if kind in (5, 6):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(_value(rng, 3)): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


REQUESTS: list[dict[str, Any]] = [
    {"type": "ping", "id": 1},
    {"type": "echo", "id": 2, "data": {"a": [1, 2]}, "count": 3},
    {"type": "subscribe", "id": 3, "channel": "fuzz"},
    {"type": "publish", "id": 4, "channel": "fuzz", "data": "hi"},
    {"type": "history", "id": 5, "channel": "fuzz", "since": 0, "limit": 2},
    {"type": "presence", "id": 6, "channel": "fuzz"},
    {"type": "unsubscribe", "id": 7, "channel": "fuzz"},
    {"type": "subscribe", "id": 8, "channel": "fuzz", "recover": {"offset": 0, "epoch": "x"}},
]


def _payload(rng: random.Random, binary: bool) -> bytes:
    """A message body: a valid or mutated request, random values, or random bytes."""
    choice = rng.randrange(6)
    if choice == 5:
        return rng.randbytes(rng.randrange(64))
    obj: Any = dict(rng.choice(REQUESTS))
    if choice in (1, 2):  # mutate fields: replace, drop, add
        for _ in range(rng.randrange(1, 4)):
            key = rng.choice([*obj, "id", "type", "data", "extra"])
            if rng.random() < 0.3:
                obj.pop(key, None)
            else:
                obj[key] = _value(rng)
    elif choice == 3:
        obj = _value(rng)
    try:
        data = msgspec.msgpack.encode(obj) if binary else json.dumps(obj).encode()
    except (OverflowError, TypeError, ValueError):
        data = b"{}"
    if choice == 4 and data:  # flip a few bytes
        buf = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        data = bytes(buf)
    return data


def action(rng: random.Random, binary: bool) -> tuple[str, list[bytes]]:
    """One fuzz step: its name and the byte chunks to write (written apart)."""
    opcode = 2 if binary else 1
    body = _payload(rng, binary)
    kind = rng.randrange(14)
    if kind <= 2:
        return "message", [frame(opcode, body)]
    if kind == 3:
        return "wrong frame type", [frame(3 - opcode, body)]
    if kind == 4:
        return "invalid utf-8", [
            frame(1, body[:5] + rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80"]))
        ]
    if kind == 5:
        op = rng.randrange(16)
        size = rng.choice([0, 5, 125, 126, 300])
        fin, rsv = rng.random() < 0.7, rng.choice([0, 0, 1, 2, 4, 7])
        return f"opcode {op} rsv {rsv}", [frame(op, os.urandom(size), fin=fin, rsv=rsv)]
    if kind == 6:  # fragments, sometimes with a control frame or a bad continuation between
        cut = rng.randrange(len(body) + 1)
        middle = rng.choice([b"", frame(9, b"p"), frame(opcode, b"x"), frame(0, b"", fin=False)])
        return "fragments", [frame(opcode, body[:cut], fin=False), middle, frame(0, body[cut:])]
    if kind == 7:
        return "unmasked", [frame(opcode, body, mask=False)]
    if kind == 8:
        return "close", [frame(8, rng.randbytes(rng.randrange(0, 20)))]
    if kind == 9:  # one frame split over several writes (it is whole in the end)
        data = frame(opcode, body)
        cuts = sorted(rng.randrange(len(data)) for _ in range(3))
        return "split", [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    if kind == 10:
        return "oversized length", [
            frame(opcode, b"abc", length=rng.choice([2**31, 2**62, MAX_MESSAGE + 1]))
        ]
    if kind == 11:
        return "too big", [
            frame(opcode, b"x" * (MAX_MESSAGE // 2), fin=False),
            frame(0, b"y" * MAX_MESSAGE),
        ]
    if kind == 12:
        return "deep nesting", [frame(opcode, nested(binary, rng.randrange(2_000, 20_000)))]
    return "garbage", [os.urandom(rng.randrange(1, 40))]


def nested(binary: bool, depth: int) -> bytes:
    """A valid publish whose ``data`` is ``depth`` nested arrays."""
    if binary:
        head = msgspec.msgpack.encode({"type": "publish", "channel": "fuzz"})
        return (
            bytes([head[0] + 1])
            + head[1:]
            + msgspec.msgpack.encode("data")
            + (b"\x91" * depth + b"\xc0")
        )
    return b'{"type":"publish","channel":"fuzz","data":' + b"[" * depth + b"]" * depth + b"}"


# Actions after which the byte stream may no longer split into frames where we
# think it does: the server may rightly wait for the rest of a frame.
UNFRAMED = {"garbage", "oversized length"}
PROBE_ID = 987_654


def _probe(binary: bool) -> bytes:
    request = {"type": "ping", "id": PROBE_ID}
    if binary:
        return frame(2, msgspec.msgpack.encode(request))
    return frame(1, json.dumps(request).encode())


def _is_probe_reply(payload: bytes, binary: bool) -> bool:
    try:
        reply = msgspec.msgpack.decode(payload) if binary else json.loads(payload)
    except (ValueError, msgspec.DecodeError):
        return False
    return isinstance(reply, dict) and reply.get("id") == PROBE_ID and reply["type"] == "pong"


async def _outcome(ws: RawWS, binary: bool, timeout: float) -> str:
    """Read until the probe's pong (``answering``), a CLOSE (its code) or EOF."""
    while True:
        try:
            opcode, payload = await ws.recv_frame(timeout)
        except EOFError:
            return "eof"
        except (ConnectionError, asyncio.IncompleteReadError):
            return "reset"
        if opcode == 8:
            return str(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else "1005"
        if opcode in (1, 2) and _is_probe_reply(payload, binary):
            return "answering"


async def fuzz_connection(port: int, seed: int) -> tuple[str, list[str]]:
    """Run one seeded fuzz connection; return its outcome and the steps sent."""
    rng = random.Random(seed)
    binary = rng.random() < 0.4
    headers = {"Sec-WebSocket-Protocol": "fastcomm.v1.msgpack"} if binary else {}
    ws, status, _ = await RawWS.connect("127.0.0.1", port, headers=headers)
    assert status == 101
    await ws.recv_frame()  # welcome
    steps: list[str] = []
    # Read all along: the server's CLOSE is taken as soon as it is sent, before
    # further writes of ours meet a closed socket and the RST discards it.
    reader = asyncio.get_running_loop().create_task(_outcome(ws, binary, 30.0))
    try:
        for _ in range(rng.randrange(1, 8)):
            name, chunks = action(rng, binary)
            steps.append(name)
            for chunk in chunks:
                if reader.done():
                    break
                ws.writer.write(chunk)
                await ws.writer.drain()
                # The server shares this loop: a short pause lets it act on the chunk.
                await asyncio.sleep(rng.choice([0.002, 0.002, 0.01]))
        if not reader.done():
            ws.writer.write(_probe(binary))
            await ws.writer.drain()
    except ConnectionError:
        pass  # the server closed while we were writing: its CLOSE is read below
    outcome = "silent"
    try:
        outcome = await asyncio.wait_for(asyncio.shield(reader), 2.0)
    except TimeoutError:
        if UNFRAMED.intersection(steps):
            # Waiting for the rest of a frame is right; our FIN must end it promptly.
            ws.writer.write_eof()
            try:
                outcome = "eof after our FIN: " + await asyncio.wait_for(reader, 3.0)
            except TimeoutError:
                outcome = "silent after our FIN"
    finally:
        reader.cancel()
        _abort(ws)
    return outcome, steps


def _abort(ws: RawWS) -> None:
    """Drop the connection (RST when the socket is still there)."""
    try:
        ws.abort()
    except OSError:  # the server already closed it: the socket is gone
        ws.writer.transport.abort()
