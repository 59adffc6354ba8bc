"""Several nodes over one shared broker, each with its own picows server on its own port:
what the broker handle makes possible before sessions and commands cross nodes (the
channels, their history and presence are the broker's; each node delivers to its own)."""

from __future__ import annotations

import fastcomm
from fastcomm.channels.memory import MemoryBroker
from tests.integration.conftest import running
from tests.integration.test_channels import Peer, offsets


def app_on(broker: MemoryBroker) -> fastcomm.App:
    app = fastcomm.App()
    app.use_broker(broker)
    return app


async def test_publishers_on_two_nodes_reach_subscribers_on_both_in_offset_order() -> None:
    broker = MemoryBroker()
    try:
        async with running(app_on(broker)) as one, running(app_on(broker)) as two:
            a, b = await Peer.connect(one.url), await Peer.connect(two.url)
            await a.subscribe("room")
            await b.subscribe("room")
            for i in range(10):
                await (a if i % 2 else b).send(type="publish", channel="room", data=i)
            got_a, got_b = await a.messages(10), await b.messages(10)
            assert offsets(got_a) == offsets(got_b) == list(range(1, 11))
            assert sorted(m["data"] for m in got_a) == list(range(10))
            assert [m["data"] for m in got_a] == [m["data"] for m in got_b]
            # History and presence are the broker's: every node sees all of it.
            history = await b.request(type="history", channel="room")
            assert offsets(history["messages"]) == list(range(1, 11))
            for peer in (a, b):
                members = (await peer.request(type="presence", channel="room"))["members"]
                assert {m["session"] for m in members} == {a.session, b.session}
            await a.nothing_pending()
            await b.nothing_pending()
    finally:
        await broker.close()


async def test_a_node_stopping_closes_only_its_handle() -> None:
    broker = MemoryBroker()
    try:
        async with running(app_on(broker)) as staying:
            b = await Peer.connect(staying.url)
            await b.subscribe("room")
            async with running(app_on(broker)) as leaving:
                a = await Peer.connect(leaving.url)
                await a.subscribe("room")
            # The stopped node took its subscriptions with it, not the broker.
            await staying.app.publish("room", "after")
            (msg,) = await b.messages(1)
            assert msg["data"] == "after"
            assert broker.nodes == 1  # the staying node's handle
    finally:
        await broker.close()
