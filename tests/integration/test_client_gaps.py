"""The Python client over a broker that loses deliveries: the server fills what history
holds, says what it cannot, and the client reports that loss once (RecoveryFailed), with
no gap and no duplicate at its API otherwise; a new channel's first publication is no loss."""

from __future__ import annotations

import fastcomm
from fastcomm.client import RecoveryFailed
from tests.integration.conftest import running
from tests.unit.unreliable import Unreliable

TIMEOUT = 5.0


async def test_a_loss_the_server_cannot_fill_is_reported_once_and_delivery_goes_on() -> None:
    app = fastcomm.App()
    broker = app.use_broker(Unreliable())
    assert isinstance(broker, Unreliable)
    async with (
        running(app, history_size=0) as server,
        await fastcomm.Client.connect(server.url) as client,
    ):
        sub = await client.subscribe("feed")
        await server.app.publish("feed", "first")  # a new stream's epoch: no loss
        first = await sub.receive(TIMEOUT)
        assert (first.offset, first.data, sub.recovered) == (1, "first", True)
        broker.drop = {2, 3}
        for text in ("lost", "lost too", "after"):
            await server.app.publish("feed", text)
        event = await sub.next_event(TIMEOUT)
        assert isinstance(event, RecoveryFailed)
        assert (event.previous_epoch, event.previous_offset) == (first.epoch, 1)
        assert (event.epoch, event.offset) == (first.epoch, 3)
        after = await sub.receive(TIMEOUT)
        assert (after.offset, after.data) == (4, "after")
        assert sub.recovered is False and sub.duplicates == 0


async def test_a_gap_history_still_holds_is_filled_without_the_client_noticing() -> None:
    app = fastcomm.App()
    broker = app.use_broker(Unreliable())
    assert isinstance(broker, Unreliable)
    async with running(app) as server, await fastcomm.Client.connect(server.url) as client:
        sub = await client.subscribe("feed")
        broker.drop = {2}
        for i in range(1, 4):
            await server.app.publish("feed", i)
        got = [(await sub.receive(TIMEOUT)).offset for _ in range(3)]
        assert got == [1, 2, 3]
        assert sub.recovered is True and sub.duplicates == 0
        assert server.node.channels.hub.gaps_repaired == 1
