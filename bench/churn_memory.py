"""What a dropped connection leaves behind: server memory per connection that subscribed
to many unique channels, never published to, then went away (a client churning
connections). Counted with tracemalloc on a real node (in-memory transport), so the
figure is Python allocations, repeatable to the byte, not a noisy RSS.

    python3 bench/churn_memory.py                      # this tree
    python3 bench/churn_memory.py --tree /tmp/old      # another tree (git worktree add)
    python3 bench/churn_memory.py --session-ttl 0 --connections 200 --max-streams 1000

Prints one JSON line: KiB retained per dropped connection, the broker's streams and the
resumable sessions held at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

_CHURN = """
import asyncio, gc, json, sys, tracemalloc
import fastcomm
from fastcomm.config import build_config
from fastcomm.node.node import Node
from fastcomm.protocol.channel_messages import Subscribe
from fastcomm.transports.memory import connect

N, CHANNELS, TTL, STREAMS = (float(a) for a in sys.argv[1:5])
options = {"port": 0, "session_ttl": TTL}
if STREAMS:
    options["max_streams"] = int(STREAMS)
node = Node(fastcomm.App(), build_config(options, env={}))
node.accepting = True
PROTOCOL = {"Sec-WebSocket-Protocol": "fastcomm.v1.json"}

async def settle():
    while node.router.inflight:
        await asyncio.gather(*node.router.inflight)

async def churn(k):
    conn, wire = connect(node, headers=PROTOCOL)
    while getattr(conn, "waiting", None) is not None:  # welcomed once its record is written
        await asyncio.sleep(0)
    for c in range(int(CHANNELS)):
        wire.receive(conn.codec.encode(Subscribe(channel=f"u{k}:{c}", id=c + 1)))
    await settle()
    wire.drop()
    await settle()

async def main():
    await churn(-1)  # warm up: caches, interned names, first allocations
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(int(N)):
        await churn(k)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    broker = node.broker if hasattr(node, "broker") else node.channels.broker
    print(json.dumps({
        "fastcomm": fastcomm.__file__,
        "per_connection_kib": round((after - before) / N / 1024, 2),
        "broker_streams": len(broker._streams),
        "resumable_sessions": (
            node.sessions.stored() - len(node.sessions) if hasattr(node.sessions, "stored")
            else node.sessions.detached_count
        ),
    }))

asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--connections", type=int, default=60)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--session-ttl", type=float, default=300.0)
    parser.add_argument("--max-streams", type=int, default=0, help="0: the default")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.tree.resolve())}
    argv = [str(args.connections), str(args.channels), str(args.session_ttl)]
    argv.append(str(args.max_streams))
    done = subprocess.run(
        [sys.executable, "-c", _CHURN, *argv],
        env=env,
        cwd=args.tree,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"churn_memory: the run failed:\n{done.stderr}")
    print(done.stdout.strip())


if __name__ == "__main__":
    main()
