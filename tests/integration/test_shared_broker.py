"""Several nodes over one shared broker, each with its own picows server on its own port:
what the broker handle makes possible before sessions and commands cross nodes (the
channels, their history and presence are the broker's; each node delivers to its own).

Each test runs on one MemoryBroker shared by the nodes, and on Redis with a
RedisBroker per node (as separate processes have), all on one redis-server."""

from __future__ import annotations

from collections.abc import Callable

import fastcomm
from fastcomm.channels.broker import Broker
from fastcomm.channels.memory import MemoryBroker
from fastcomm.channels.redis_broker import RedisBroker
from fastcomm.config import Namespace
from tests.integration.conftest import running
from tests.integration.test_channels import Peer, offsets
from tests.waiting import eventually


class Keeps:
    """Counts the batches of presence kept alive, over every broker of a test."""

    count = 0


class CountingMemory(MemoryBroker):
    async def presence_keep(self, present: list[tuple[str, str]], ttl: float) -> None:
        Keeps.count += 1
        await super().presence_keep(present, ttl)


class CountingRedis(RedisBroker):
    async def presence_keep(self, present: list[tuple[str, str]], ttl: float) -> None:
        Keeps.count += 1
        await super().presence_keep(present, ttl)


BROKER_CLASSES = (CountingMemory, CountingRedis)  # what the ``brokers`` fixture makes


def app_on(broker: Broker) -> fastcomm.App:
    app = fastcomm.App()
    app.use_broker(broker)
    return app


async def test_publishers_on_two_nodes_reach_subscribers_on_both_in_offset_order(
    brokers: Callable[[], Broker],
) -> None:
    async with running(app_on(brokers())) as one, running(app_on(brokers())) as two:
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


async def test_a_node_stopping_closes_only_its_handle(brokers: Callable[[], Broker]) -> None:
    broker = brokers()
    async with running(app_on(broker)) as staying:
        b = await Peer.connect(staying.url)
        await b.subscribe("room")
        async with running(app_on(brokers())) as leaving:
            a = await Peer.connect(leaving.url)
            await a.subscribe("room")
        # The stopped node took its subscriptions with it, not the broker.
        await staying.app.publish("room", "after")
        (msg,) = await b.messages(1)
        assert msg["data"] == "after"
        assert isinstance(broker, MemoryBroker | RedisBroker)
        assert broker.nodes == 1  # the staying node's handle


async def test_a_dead_nodes_members_leave_presence_within_presence_ttl(
    brokers: Callable[[], Broker],
) -> None:
    Keeps.count = 0
    rooms = (Namespace(pattern="room", join_leave=True),)
    options = {"presence_ttl": 0.4, "namespaces": rooms}  # kept every 0.13 s by live nodes
    async with (
        running(app_on(brokers()), **options) as dying,
        running(app_on(brokers()), **options) as living,
    ):
        a, b = await Peer.connect(dying.url), await Peer.connect(living.url)
        # b first: a's join, published after a's reply, then surely reaches b (once).
        await b.subscribe("room")
        assert (await b.recv())["session"] == b.session  # its own join
        await a.subscribe("room")
        joined = await b.recv()
        assert (joined["type"], joined["session"]) == ("join", a.session)

        async def sessions() -> set[str]:
            return {m.session for m in await living.app.presence("room")}

        assert await sessions() == {a.session, b.session}
        await eventually(lambda: Keeps.count >= 4, 5, "the nodes keep their members")
        assert await sessions() == {a.session, b.session}  # kept beyond one ttl
        sweeper = dying.node._sweeper
        assert sweeper is not None
        sweeper.cancel()  # the node dies: it keeps nothing and says nothing

        async def only_b() -> bool:
            return await sessions() == {b.session}

        await eventually(only_b, 5, "the dead node's member expires")
        await b.nothing_pending()  # no leave event for an expired member
