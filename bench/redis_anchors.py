"""Anchors for the Redis fan-out figures, on this machine: what Redis and
redis-py cost before any WebSocket server is involved.

    PYTHONPATH=. python3 bench/redis_anchors.py [--messages 100000] [--rounds 3]

1. ``redis-benchmark -q PUBLISH anchor <64 bytes>`` (no subscriber): PUBLISH requests/s, 50
   clients, without and with 16-deep pipelining.
2. redis-py + hiredis: one publisher (asyncio, PUBLISH one at a time, awaited,
   and pipelined 100 at a time) and one subscriber process (redis-py's asyncio
   PubSub on hiredis, ``listen()``): messages/s received and the
   subscriber's CPU per message (what one Redis hop costs a Python process).
3. What one command costs the calling process (CPU per awaited call, this
   process on uvloop): ``RedisBroker.publish`` (the publish script, no local
   subscriber), redis-py ``PUBLISH`` and ``PING`` through its pool, and a
   pre-packed ``PUBLISH`` on one bare connection.

redis-server runs on CPU 1 (as in ``bench/redis_fanout.py``), publisher and
subscriber on CPU 0. Medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aredis
import uvloop

from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.loadgen.target import Probe
from tests.redisserver import RedisServer

_PAYLOAD = b"x" * 64
_SUBSCRIBER = r"""
import asyncio, sys, time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aredis
import uvloop

from fastcomm.channels.redis_broker import RedisBroker
async def main(port, count):
    client = aredis.Redis(port=port)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("anchor")
    print("ready", flush=True)
    got, start = 0, 0.0
    async for _ in pubsub.listen():  # subscribe confirmations are skipped
        got += 1
        if got == 1:
            start = time.perf_counter()
        if got == count:
            break
    print(got, time.perf_counter() - start, flush=True)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def redis_benchmark(port: int, pipeline: int) -> float:
    done = subprocess.run(
        ["taskset", "-c", "0", "redis-benchmark", "-p", str(port), "-n", "200000",
         "-c", "50", "-P", str(pipeline), "-q", "PUBLISH", "anchor", "x" * 64],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.findall(r"([\d.]+) requests per second", done.stdout)
    return float(found[-1])


async def _publish(port: int, count: int, batch: int) -> None:
    client = aredis.Redis(port=port)
    payload = _PAYLOAD
    if batch == 1:
        for _ in range(count):
            await client.publish("anchor", payload)
    else:
        for _ in range(count // batch):
            pipe = client.pipeline(transaction=False)
            for _ in range(batch):
                pipe.publish("anchor", payload)
            await pipe.execute()
    await client.aclose()


def redis_py(port: int, count: int, batch: int) -> tuple[float, float]:
    """(messages/s received, subscriber CPU µs per message)."""
    sub = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", _SUBSCRIBER, str(port), str(count)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sub.stdout is not None
    assert sub.stdout.readline().strip() == "ready"
    probe = Probe(sub.pid)
    cpu = probe.cpu_seconds()
    asyncio.run(_publish(port, count, batch))
    got, seconds = sub.stdout.readline().split()
    used = probe.cpu_seconds() - cpu
    sub.wait(10)
    return int(got) / float(seconds), used / int(got) * 1e6


async def _per_call(url: str, count: int) -> dict[str, float]:
    broker = RedisBroker(url)
    await broker.ping()
    conn = broker.redis.connection_pool.make_connection()
    await conn.connect()
    packed = conn.pack_command("PUBLISH", "anchor", _PAYLOAD)

    async def raw() -> None:
        await conn.send_packed_command(packed, False)
        await conn.read_response()

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "RedisBroker.publish": lambda: broker.publish(
            "anchor", _PAYLOAD, history_size=0, history_ttl=0
        ),
        "redis-py PUBLISH (pool)": lambda: broker.redis.publish("anchor", _PAYLOAD),
        "redis-py PING (pool)": lambda: broker.redis.ping(),
        "pre-packed PUBLISH, bare connection": raw,
    }
    found = {}
    for label, call in calls.items():
        for _ in range(count // 10):
            await call()
        started = time.process_time()
        for _ in range(count):
            await call()
        found[f"CPU per awaited call, {label} (µs)"] = (time.process_time() - started) / count * 1e6
    await conn.disconnect()
    await broker.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        assert server.process is not None
        os.sched_setaffinity(server.process.pid, {1})
        os.sched_setaffinity(0, {0})
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for pipeline in (1, 16):
                rows.setdefault(f"redis-benchmark PUBLISH -P {pipeline} (req/s)", []).append(
                    redis_benchmark(server.port, pipeline)
                )
            for batch in (1, 100):
                rate, cpu = redis_py(server.port, args.messages, batch)
                label = "awaited one by one" if batch == 1 else "pipelined by 100"
                rows.setdefault(f"redis-py PUBLISH {label} -> 1 subscriber (msg/s)", []).append(
                    rate
                )
                rows.setdefault(f"  subscriber CPU per message, {label} (µs)", []).append(cpu)
            for label, value in uvloop.run(_per_call(server.url, 5000)).items():
                rows.setdefault(label, []).append(value)
            time.sleep(0.2)
        for label, values in rows.items():
            print(f"{label}: {statistics.median(values):,.2f}  (runs: "
                  + ", ".join(f"{v:,.1f}" for v in values) + ")")  # fmt: skip
    finally:
        server.remove()


if __name__ == "__main__":
    main()
