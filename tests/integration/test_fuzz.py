"""Socket-level fuzzing of a real server, with an observer measuring its latency.

Many raw connections send random and mutated frames (reserved opcodes and
bits, bad lengths, unmasked frames, fragments, invalid UTF-8, garbage,
truncated frames, oversized length fields, random JSON/MessagePack payloads,
valid requests with mutated fields) while one well-behaved connection keeps
pinging. The server must stay up and responsive, end every fuzz connection
with a close code of docs/PROTOCOL.md (or keep answering it), and log no
error for what clients sent (tests at the end pin the two cases that once did:
deep nesting, and picows' parser errors). The run is seeded (``FUZZ_SEED`` repeats one); the seed,
the outcomes and every log record seen are printed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections import Counter
from typing import Any

import msgspec
import pytest

import fastcomm
from tests.integration.conftest import eventually, running, status_of
from tests.integration.fuzzgen import MAX_MESSAGE, UNFRAMED, frame, fuzz_connection, nested
from tests.integration.rawws import RawWS

__all__: list[str] = []

FAIL_FAST = {"too big", "invalid utf-8", "unmasked", "oversized length", "fragments", "garbage"}
PROTOCOL_CLOSE_CODES = {1000, 1001, 1002, 1007, 1008, 1009, 1011, 4003, 4008, 4029}
CONNECTIONS = 50  # at least this many fuzz connections...
MIN_SECONDS = 4.0  # ...and fuzzing for at least this long, so the observer sees it all
MAX_CONNECTIONS = 600
PARALLEL = 10


class Echo(fastcomm.Message, tag="echo"):
    data: Any = None
    count: int = 0


def _app() -> fastcomm.App:
    app = fastcomm.App()

    @app.on(Echo)
    def echo(msg: Echo, conn: fastcomm.Connection) -> Any:
        return msg.data

    return app


class Observer:
    """A well-behaved connection pinging every 10 ms, timing each round trip."""

    def __init__(self, ws: RawWS) -> None:
        self.ws = ws
        self.rtts: list[float] = []
        self.missed = 0
        self.running = True

    async def run(self) -> None:
        rid = 0
        while self.running:
            rid += 1
            start = time.perf_counter()
            self.ws.send_text(json.dumps({"type": "ping", "id": rid}))
            try:
                while True:
                    opcode, payload = await self.ws.recv_frame(1.0)
                    if opcode == 1 and json.loads(payload).get("id") == rid:
                        break
            except TimeoutError:
                self.missed += 1
                continue
            self.rtts.append(time.perf_counter() - start)
            await asyncio.sleep(0.01)

    def p99(self) -> float:
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def test_fuzzed_connections_never_hurt_the_server(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    base = int(os.environ.get("FUZZ_SEED", random.randrange(2**32)))
    started = time.monotonic()
    async with running(_app(), max_message_size=MAX_MESSAGE) as server:
        ws, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        await ws.recv_frame()
        observer = Observer(ws)
        watching = asyncio.get_running_loop().create_task(observer.run())
        gate = asyncio.Semaphore(PARALLEL)

        async def one(seed: int) -> tuple[int, str, list[str]]:
            async with gate:
                outcome, steps = await fuzz_connection(server.port, seed)
                return seed, outcome, steps

        runs: list[tuple[int, str, list[str]]] = []
        fuzzing_from = time.monotonic()
        while len(runs) < CONNECTIONS or time.monotonic() - fuzzing_from < MIN_SECONDS:
            batch = range(base + len(runs), base + len(runs) + PARALLEL)
            runs += await asyncio.wait_for(asyncio.gather(*(one(seed) for seed in batch)), 12)
            if len(runs) >= MAX_CONNECTIONS:
                break
        observer.running = False
        await watching
        # Every fuzz connection is gone from the server: nothing leaked.
        await _settled(server)
        fresh, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        await fresh.recv_frame()
        fresh.send_text('{"type":"ping","id":1}')
        assert json.loads((await fresh.recv_frame())[1]) == {"type": "pong", "id": 1}
        fresh.close()
        ws.close()
    outcomes = Counter(outcome for _, outcome, _ in runs)
    print(f"\nfuzz seed {base}: outcomes {dict(outcomes)}; observer {len(observer.rtts)} "
          f"pings, p99 {observer.p99() * 1000:.1f} ms, missed {observer.missed}")  # fmt: skip
    logged = Counter(
        (r.levelname, r.name, r.getMessage().split(",")[0][:70]) for r in caplog.records
    )
    for (level, name, text), n in sorted(logged.items()):
        print(f"  log x{n} {level} {name}: {text}")
    bad = [
        (seed, outcome, steps)
        for seed, outcome, steps in runs
        if not (
            outcome == "answering"
            or (outcome.isdigit() and int(outcome) in PROTOCOL_CLOSE_CODES)
            # a violation the server answers by closing at once (CLOSE, then TCP):
            # a peer still writing may see the reset before reading the CLOSE
            or (outcome == "reset" and FAIL_FAST.intersection(steps))
            # a valid code of the client's own CLOSE is echoed (docs/PROTOCOL.md)
            or (outcome.isdigit() and 3000 <= int(outcome) < 5000 and "close" in steps)
            or (outcome.startswith("eof after our FIN") and UNFRAMED.intersection(steps))
        )
    ]
    assert not bad, f"seed {base}: connections that ended badly: {bad[:5]}"
    assert observer.missed == 0 and len(observer.rtts) >= 50, (observer.missed, base)
    assert observer.p99() < 0.25, f"seed {base}: observer p99 {observer.p99():.3f}s"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    unexpected = [r.getMessage() for r in errors]
    assert not unexpected, f"seed {base}: client input logged at ERROR: {unexpected}"
    assert outcomes["1011"] == 0, (base, outcomes)  # 1011 is a server error
    assert time.monotonic() - started < 30


async def _settled(server: fastcomm.Server) -> None:
    async def only_observer() -> bool:
        return bool((await status_of(server))["connections"] == 1)

    await eventually(only_observer, timeout=8)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_deeply_nested_message_is_a_client_error(
    binary: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    headers = {"Sec-WebSocket-Protocol": "fastcomm.v1.msgpack"} if binary else {}
    async with running(_app()) as server:
        ws, status, _ = await RawWS.connect("127.0.0.1", server.port, headers=headers)
        assert status == 101
        await ws.recv_frame()
        ws.writer.write(frame(2 if binary else 1, nested(binary, 10_000)))
        opcode, payload = await ws.recv_frame()
        ws.close()
    assert opcode in (1, 2), f"closed: {payload[:2].hex()}"
    reply = msgspec.msgpack.decode(payload) if binary else json.loads(payload)
    assert reply["type"] == "error" and reply["code"] == "invalid_message"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "data",
    [frame(6, b""), frame(1, b'{"type":"ping"}', mask=False), frame(8, b"\x03\xe8\xff")],
    ids=["reserved opcode", "unmasked", "close reason not utf-8"],
)
async def test_client_protocol_violation_is_not_logged_at_error(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running() as server:
        ws, status, _ = await RawWS.connect("127.0.0.1", server.port)
        assert status == 101
        await ws.recv_frame()
        ws.writer.write(data)
        code, _ = await ws.recv_until_close()
        ws.close()
    assert code in (1002, 1007)  # the violation itself is answered correctly
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
