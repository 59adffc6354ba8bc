"""Gap fills and odd channel replies, against a server scripted to produce them.

A fastcomm server sends a subscription's publications in offset order; a gap
shows up on a real client only when publications were written to a dying
connection (see test_client_channels.py). Here a picows server makes gaps at
will and answers the client's ``history`` request as each test needs: with an
error, with a page of another epoch, with holes, with more than asked for, or
only after the client unsubscribed. And it answers ``subscribe``/``publish``
with a reply of the wrong type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import fastcomm
from fastcomm.client import RecoveryFailed, SubscriptionClosed
from fastcomm.protocol.channel_messages import HistoryReply, Publication, Subscribed, Unsubscribed
from fastcomm.protocol.messages import ErrorReply, Pong, Welcome
from tests.integration.conftest import eventually
from tests.integration.fakeserver import FakeServer, Peer

TIMEOUT = 5.0
FAST: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.05}
Request = dict[str, Any]


def pub(offset: int, epoch: str = "e1") -> Publication:
    return Publication("ch", offset, epoch, offset)


def channel(
    pushed: list[int], history: Callable[[Peer, Request], None]
) -> Callable[[Peer, Request], None]:
    """Answers ``subscribe`` at offset 0 of epoch e1 and pushes the publications
    at ``pushed`` offsets; ``history`` answers the history requests."""

    def on_request(peer: Peer, request: Request) -> None:
        kind, rid = request["type"], request.get("id")
        if kind == "subscribe":
            peer.send(Subscribed(rid, "ch", 0, "e1", False))
            for offset in pushed:
                peer.send(pub(offset))
        elif kind == "history":
            history(peer, request)
        elif kind == "unsubscribe":
            peer.send(Unsubscribed(rid, "ch"))

    return on_request


def histories(peer: Peer) -> list[Request]:
    return [request for request in peer.requests if request["type"] == "history"]


async def test_a_failed_history_request_reports_the_gaps_and_goes_on() -> None:
    def refuse(peer: Peer, request: Request) -> None:
        peer.send(ErrorReply(request["id"], "unavailable", "channel backend unavailable"))

    async with FakeServer(on_request=channel([1, 3, 5], refuse)) as fake:
        client = await fastcomm.Client.connect(fake.url, reconnect=False)
        sub = await client.subscribe("ch")
        got = [await sub.receive(TIMEOUT) for _ in range(3)]
        assert [p.offset for p in got] == [1, 3, 5]  # what was held is still delivered
        events = [await sub.next_event(TIMEOUT) for _ in range(2)]
        assert events == [
            RecoveryFailed("ch", "e1", 2, "e1", 1),
            RecoveryFailed("ch", "e1", 4, "e1", 3),
        ]
        assert sub.recovered is False
        (peer,) = fake.peers
        # After a failure the client does not ask again for the next gap of the same batch.
        assert [(h["since"], h["limit"]) for h in histories(peer)] == [(1, 1)]
        await client.close()


@pytest.mark.parametrize(
    ("page", "delivered", "lost"),
    [
        pytest.param([pub(2), pub(3)], [1, 2, 3, 4], [], id="complete"),
        pytest.param([pub(1), pub(2), pub(3)], [1, 2, 3, 4], [], id="starts-before-the-gap"),
        pytest.param([pub(2), pub(3), pub(4), pub(5)], [1, 2, 3, 4], [], id="more-than-asked"),
        pytest.param([pub(3)], [1, 4], [RecoveryFailed("ch", "e1", 3, "e1", 1)], id="with-a-hole"),
        pytest.param(
            [pub(2, "e0"), pub(3, "e0")],
            [1, 4],
            [RecoveryFailed("ch", "e1", 3, "e1", 1)],
            id="another-epoch",
        ),
    ],
)
async def test_a_history_page_fills_only_what_continues_the_stream(
    page: list[Publication], delivered: list[int], lost: list[RecoveryFailed]
) -> None:
    """Offsets 2 and 3 are missing between 1 and 4; history answers with ``page``."""

    def answer(peer: Peer, request: Request) -> None:
        epoch = page[0].epoch
        peer.send(HistoryReply(request["id"], "ch", epoch, page))
        peer.send(pub(5))  # a sentinel: everything before it is settled once it arrives

    async with FakeServer(on_request=channel([1, 4], answer)) as fake:
        client = await fastcomm.Client.connect(fake.url, reconnect=False)
        sub = await client.subscribe("ch")
        got = [await sub.receive(TIMEOUT) for _ in range(len(delivered) + 1)]
        assert [p.offset for p in got] == [*delivered, 5]
        assert [p.epoch for p in got] == ["e1"] * len(got)
        assert [await sub.next_event(TIMEOUT) for _ in lost] == lost
        assert sub.recovered == (not lost) and sub.duplicates == 0
        (peer,) = fake.peers
        assert [(h["since"], h["limit"]) for h in histories(peer)] == [(1, 2)]
        await client.close()


@pytest.mark.parametrize("answer", ["page", "error"])
async def test_a_gap_fill_answered_after_unsubscribe_delivers_nothing_more(answer: str) -> None:
    """The history reply (a page, or an error) comes only after the client
    unsubscribed: what it holds and what was waiting behind the gap are not
    delivered, and no loss is reported."""
    waiting: list[Request] = []

    def hold(peer: Peer, request: Request) -> None:
        waiting.append(request)

    def on_request(peer: Peer, request: Request) -> None:
        if request["type"] == "unsubscribe":
            (history,) = waiting
            if answer == "page":
                peer.send(HistoryReply(history["id"], "ch", "e1", [pub(2)]))
            else:
                peer.send(ErrorReply(history["id"], "unavailable", "try later"))
        channel([1, 3], hold)(peer, request)

    async with FakeServer(on_request=on_request) as fake:
        client = await fastcomm.Client.connect(fake.url, reconnect=False)
        sub = await client.subscribe("ch")
        assert (await sub.receive(TIMEOUT)).offset == 1
        await eventually(lambda: waiting)
        await sub.unsubscribe()
        assert [p.offset async for p in sub] == []
        assert [event async for event in sub.events()] == []
        assert sub.offset == 1 and client.subscriptions == {}
        await client.close()


def welcome_in_turn(peer: Peer) -> None:
    """A new session on every connection: s1, s2, ..."""
    peer.send(Welcome(f"s{len(peer.server.peers)}", "t", False, 25.0, 1 << 20))


async def test_a_connection_lost_during_a_gap_fill_recovers_from_what_was_delivered() -> None:
    """The first connection never answers the ``history`` request and is then
    closed (1012); the client re-subscribes on the new session from offset 1,
    the last one it delivered, and gets 2 and 3 once each."""
    waiting: list[Request] = []

    def on_request(peer: Peer, request: Request) -> None:
        if peer is peer.server.peers[0]:
            channel([1, 3], lambda _peer, history: waiting.append(history))(peer, request)
        elif request["type"] == "subscribe":
            peer.send(Subscribed(request["id"], "ch", 3, "e1", True))
            peer.send(pub(2))
            peer.send(pub(3))

    async with FakeServer(welcome_in_turn, on_request) as fake:
        client = await fastcomm.Client.connect(fake.url, **FAST)
        sub = await client.subscribe("ch")
        assert (await sub.receive(TIMEOUT)).offset == 1
        await eventually(lambda: waiting)
        fake.peers[0].close(b"\x03\xf4restart")  # 1012
        got = [await sub.receive(TIMEOUT) for _ in range(2)]
        assert [p.offset for p in got] == [2, 3]
        assert client.session == "s2" and sub.recovered is True and sub.duplicates == 0
        with pytest.raises(TimeoutError):
            await sub.next_event(timeout=0)  # nothing was lost
        (resubscribe,) = fake.peers[1].requests
        assert resubscribe["recover"] == {"offset": 1, "epoch": "e1"}
        await client.close()


# -- replies of the wrong type -----------------------------------------------------------------


def pong_to_everything(peer: Peer, request: Request) -> None:
    peer.send(Pong(request["id"]))


async def test_subscribe_and_publish_refuse_a_reply_of_another_type() -> None:
    async with FakeServer(on_request=pong_to_everything) as fake:
        client = await fastcomm.Client.connect(fake.url, reconnect=False)
        with pytest.raises(fastcomm.ClientError, match="expected a subscribed reply"):
            await client.subscribe("ch")
        assert client.subscriptions == {}
        with pytest.raises(fastcomm.ClientError, match="expected a published reply"):
            await client.publish("ch", "data")
        assert not client.closed
        await client.close()


async def test_a_resubscription_answered_with_another_type_ends_the_subscription() -> None:
    """The first connection subscribes normally and is then closed (1012, restart);
    the server answers the re-subscription on the new session with ``pong``."""

    def on_request(peer: Peer, request: Request) -> None:
        if peer is peer.server.peers[0]:
            peer.send(Subscribed(request["id"], "ch", 0, "e1", False))
        else:
            pong_to_everything(peer, request)

    async with FakeServer(welcome_in_turn, on_request) as fake:
        client = await fastcomm.Client.connect(fake.url, **FAST)
        sub = await client.subscribe("ch")
        fake.peers[0].close(b"\x03\xf4restart")  # 1012
        with pytest.raises(SubscriptionClosed) as closed:
            await sub.receive(TIMEOUT)
        assert "unexpected reply" in closed.value.reason
        assert client.session == "s2" and client.connected
        second = fake.peers[1]
        assert [r["type"] for r in second.requests] == ["subscribe"]
        assert second.requests[0]["recover"] == {"offset": 0, "epoch": "e1"}
        await client.close()
