"""The in-memory transport (what unit tests and in-process benchmarks connect with):
refusals, counting without recording, the end of a connection, heartbeats."""

from __future__ import annotations

import pytest

import fastcomm
from fastcomm.config import build_config
from fastcomm.node.node import Node
from fastcomm.transports.memory import Refused, connect, opened
from tests.waiting import eventually


def make(app: fastcomm.App | None = None, **options: object) -> Node:
    node = Node(app or fastcomm.App(), build_config(options, env={}))
    node.accepting = True  # what start() does, without the sweep
    return node


def test_a_refused_connect_raises_with_the_http_status() -> None:
    app = fastcomm.App()

    @app.on_connect
    def connect_hook(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
        raise fastcomm.Rejected(401, "missing token")

    with pytest.raises(Refused, match=r"^401 missing token$") as refused:
        connect(make(app))
    assert refused.value.status == 401
    draining = make()
    draining.accepting = False
    with pytest.raises(Refused) as refused:
        connect(draining)
    assert (refused.value.status, str(refused.value)) == (503, "503 server is draining")


async def test_without_recording_only_the_count_grows() -> None:
    node = make()
    conn, transport = await opened(node, record=False)
    assert transport.count == 1  # the welcome
    for n in range(3):
        conn.send({"type": "tick", "n": n})
    assert (transport.count, transport.sent) == (4, [])


@pytest.mark.parametrize("end", ["abort", "disconnect", "drop"])
async def test_the_end_of_a_connection_detaches_it_once(end: str) -> None:
    gone: list[str] = []
    app = fastcomm.App()
    app.on_disconnect(lambda conn: gone.append(conn.session_id))
    node = make(app)
    conn, transport = await opened(node)
    getattr(transport, end)()
    getattr(transport, end)()  # a second time: nothing more
    assert gone == [conn.session_id]
    assert not node.connections and transport.disconnected
    assert transport.aborted is (end == "abort")


async def test_the_heartbeat_pings_an_idle_connection_and_closes_a_silent_one() -> None:
    node = make(heartbeat=0.1, heartbeat_timeout=0.2)
    node.start()
    try:
        _, transport = connect(node)
        await eventually(lambda: transport.aborted, 5, "the silent connection is aborted")
        assert transport.pings >= 1  # pinged when idle
        assert transport.closed_with == (1001, b"heartbeat timeout")  # no answer: closed
        assert transport.aborted and not node.connections
    finally:
        await node.close()
