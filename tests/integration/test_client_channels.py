"""fastcomm.Client subscriptions and automatic reconnect against real servers.

In-process servers (``fastcomm.Server(port=0)``) for most cases; a
``python -m fastcomm serve`` subprocess, killed with SIGKILL and restarted on
the same port, for the server that loses its memory. Reconnection is gated by
the server's connect hook (503 while closed) so that publications are made
while the client is certainly away, without sleeping.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import fastcomm
from fastcomm.client import RecoveryFailed, Subscription, SubscriptionClosed
from fastcomm.config import Namespace
from fastcomm.protocol.channel_messages import (
    HistoryReply,
    Join,
    Leave,
    Publication,
    Subscribe,
    Subscribed,
)
from fastcomm.protocol.messages import Ping, Pong
from tests.integration.conftest import eventually, free_port
from tests.integration.fakeserver import FakeServer, Peer

TIMEOUT = 5.0
FAST: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.05}


class Hang(fastcomm.Message, tag="hang"):
    pass


class Gate:
    """The app's connect hook: lets connections in while open, answers 503 (or
    ``status``) while closed, and counts refusals; records sessions as they go."""

    def __init__(self, app: fastcomm.App) -> None:
        self.open = True
        self.status = 503
        self.refusals = 0
        self.refused = asyncio.Event()
        self.gone: asyncio.Queue[str] = asyncio.Queue()
        self.hanging = asyncio.Event()
        self.release = asyncio.Event()

        @app.on_connect
        def connect(request: fastcomm.ConnectRequest) -> fastcomm.Identity | None:
            if not self.open:
                self.refusals += 1
                self.refused.set()
                raise fastcomm.Rejected(self.status, "closed for the test")
            return None

        @app.on_disconnect
        def gone(conn: fastcomm.Connection) -> None:
            self.gone.put_nowait(conn.session_id)

        @app.on(Hang)
        async def hang(msg: Hang, conn: fastcomm.Connection) -> str:
            self.hanging.set()
            await self.release.wait()
            return "late"

    def close(self, status: int = 503) -> None:
        self.open, self.status = False, status
        self.refused.clear()

    async def was_refused(self) -> None:
        await asyncio.wait_for(self.refused.wait(), TIMEOUT)

    async def session_gone(self) -> str:
        return await asyncio.wait_for(self.gone.get(), TIMEOUT)


@asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[tuple[fastcomm.Server, Gate]]:
    app = fastcomm.App()
    gate = Gate(app)
    async with fastcomm.Server(app, port=0, **options) as server:
        try:
            yield server, gate
        finally:
            gate.release.set()


class Reconnects:
    """An ``on_reconnect`` callback that can be awaited."""

    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()

    def __call__(self, client: fastcomm.Client) -> None:
        self.count += 1
        self.event.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.event.wait(), TIMEOUT)
        self.event.clear()


async def take(sub: Subscription, n: int) -> list[Publication]:
    return [await sub.receive(TIMEOUT) for _ in range(n)]


def offsets(pubs: list[Publication]) -> list[int]:
    return [pub.offset for pub in pubs]


async def assert_nothing_more(sub: Subscription, app: fastcomm.App) -> None:
    """The next publication is a fresh one: nothing (no duplicate) was queued before it."""
    _epoch, offset = await app.publish(sub.channel, "sentinel")
    pub = await sub.receive(TIMEOUT)
    assert (pub.offset, pub.data) == (offset, "sentinel")
    assert sub.pending == 0 and sub.duplicates == 0


# -- subscribe / iterate / unsubscribe ------------------------------------------------


async def test_subscribe_iterate_unsubscribe() -> None:
    async with serve() as (server, _gate):
        client = await fastcomm.Client.connect(server.url)
        sub = await client.subscribe("news")
        assert (sub.channel, sub.offset, sub.recovered) == ("news", 0, True)
        assert client.subscriptions == {"news": sub}
        with pytest.raises(fastcomm.ClientError, match="already subscribed"):
            await client.subscribe("news")
        for i in range(3):
            await server.app.publish("news", {"n": i})
        got = []
        async for pub in sub:
            got.append(pub)
            if len(got) == 3:
                break
        assert offsets(got) == [1, 2, 3] and [p.data for p in got] == [{"n": i} for i in range(3)]
        assert (sub.epoch, sub.offset) == (got[0].epoch, 3)

        await server.app.publish("news", "unread")
        await eventually(lambda: sub.pending == 1)
        await sub.unsubscribe()
        assert sub.closed and client.subscriptions == {}
        assert [p.data async for p in sub] == ["unread"]  # what arrived is still read, then the end
        with pytest.raises(SubscriptionClosed):
            await sub.receive(TIMEOUT)
        await server.app.publish("news", "after")  # neither the subscription nor the inbox gets it
        assert isinstance(await client.request(Ping()), Pong)
        assert len(client.inbox) == 0
        assert await server.app.presence("news") == []
        await sub.unsubscribe()  # a no-op once ended

        async with await client.subscribe(
            "news"
        ) as again:  # subscribe again; the block unsubscribes
            await server.app.publish("news", "again")
            assert (await again.receive(TIMEOUT)).offset == 6
        assert again.closed and await server.app.presence("news") == []
        await client.close()


async def test_refusals_and_hand_made_subscriptions() -> None:
    app = fastcomm.App()
    app.authorize_subscribe(lambda conn, channel: not channel.startswith("secret"))
    async with fastcomm.Server(app, port=0) as server:
        client = await fastcomm.Client.connect(server.url)
        with pytest.raises(fastcomm.RequestFailed) as refused:
            await client.subscribe("secret")
        assert refused.value.code == "forbidden"
        with pytest.raises(fastcomm.RequestFailed) as invalid:
            await client.subscribe("bad name")
        assert invalid.value.code == "invalid_message"
        assert client.subscriptions == {}
        # A subscription made by hand is not tracked: its pushes go to the inbox, as before.
        assert isinstance(await client.request(Subscribe(channel="raw")), Subscribed)
        await app.publish("raw", 1)
        push = await client.receive(TIMEOUT)
        assert isinstance(push, Publication) and push.channel == "raw"
        await client.close()


async def test_two_clients_exchange_publications_and_presence_events() -> None:
    namespaces = (Namespace(pattern="room:*", join_leave=True),)
    async with serve(namespaces=namespaces) as (server, _gate):
        alice = await fastcomm.Client.connect(server.url)
        bob = await fastcomm.Client.connect(server.url)
        a = await alice.subscribe("room:1")
        assert await a.next_event(TIMEOUT) == Join("room:1", alice.session, None)
        b = await bob.subscribe("room:1")
        assert await a.next_event(TIMEOUT) == Join("room:1", bob.session, None)
        assert await b.next_event(TIMEOUT) == Join("room:1", bob.session, None)

        assert await alice.publish("room:1", "hi bob") == 1
        assert await bob.publish("room:1", "hi alice") == 2
        for sub in (a, b):
            got = await take(sub, 2)
            assert [(p.offset, p.data) for p in got] == [(1, "hi bob"), (2, "hi alice")]
        await b.unsubscribe()
        assert await a.next_event(TIMEOUT) == Leave("room:1", bob.session, None)
        events = a.events()
        await alice.close()
        assert [e async for e in events] == []  # the events end with the subscription
        assert a.closed
        await bob.close()


# -- the client's own filtering, against a server that misbehaves on purpose ------------


def misbehaving(fill: list[int]) -> FakeServer:
    """Answers ``subscribe`` with duplicates and a gap in the offsets, ``history`` with
    ``fill`` (the missing publication or nothing), then pushes a publication of a
    new epoch. Its peers record the requests they got."""

    def on_request(peer: Peer, request: dict[str, Any]) -> None:
        rid, kind = request.get("id"), request["type"]
        if kind == "subscribe":
            peer.send(Subscribed(rid, "ch", 0, "e1", False))
            for offset in (1, 2, 2, 1, 3, 5, 6, 5):
                peer.send(Publication("ch", offset, "e1", offset))
        elif kind == "history":
            pubs = [Publication("ch", offset, "e1", offset) for offset in fill]
            peer.send(HistoryReply(rid, "ch", "e1", pubs))
            peer.send(Publication("ch", 1, "e2", "new epoch"))
        elif kind == "ping":
            peer.send(Pong(rid))

    return FakeServer(on_request=on_request)


@pytest.mark.parametrize("fill", [[4], []])
async def test_duplicates_are_dropped_and_gaps_filled_from_history(fill: list[int]) -> None:
    async with misbehaving(fill) as server:
        client = await fastcomm.Client.connect(server.url, reconnect=False)
        sub = await client.subscribe("ch")
        got = await take(sub, 7 if fill else 6)
        assert [(p.epoch, p.offset) for p in got] == [
            *[("e1", offset) for offset in (1, 2, 3, *fill, 5, 6)],
            ("e2", 1),
        ]
        requests = server.peers[0].requests
        assert requests[1] == {"type": "history", "id": 2, "channel": "ch", "since": 3, "limit": 1}
        lost = [] if fill else [RecoveryFailed("ch", "e1", 4, "e1", 3)]
        lost.append(RecoveryFailed("ch", "e2", 0, "e1", 6))
        assert [await sub.next_event(TIMEOUT) for _ in lost] == lost
        assert sub.duplicates == 3 and sub.recovered is False
        await client.close()


# -- reconnect with resume --------------------------------------------------------------


@pytest.mark.parametrize("drop", ["abort", 1011, 4008, 1001])
async def test_reconnect_resumes_and_recovers_every_missed_publication_once(
    drop: str | int,
) -> None:
    async with serve() as (server, gate):
        app = server.app
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        session = client.session
        sub = await client.subscribe("feed")
        for i in range(3):
            await app.publish("feed", i)
        assert offsets(await take(sub, 3)) == [1, 2, 3]

        gate.close()
        if drop == "abort":
            client.connection.abort()  # TCP dropped, no close handshake: 1006
        else:
            assert await app.disconnect(session, code=int(drop))
        assert await gate.session_gone() == session
        for i in range(3, 8):
            await app.publish("feed", i)
        await gate.was_refused()  # the client retries on its own (and 503 is retried)
        assert not client.closed and not client.connected
        gate.open = True
        await reconnected.wait()

        assert client.welcome.resumed is True and client.session == session
        assert client.reconnects == reconnected.count == 1
        missed = await take(sub, 5)
        assert offsets(missed) == [4, 5, 6, 7, 8]
        assert [p.data for p in missed] == [3, 4, 5, 6, 7]
        assert sub.recovered is True and sub.offset == 8
        await assert_nothing_more(sub, app)
        await client.close()


@pytest.mark.parametrize("published_while_away", [0, 2])
async def test_publications_written_to_a_dying_connection_are_filled_from_history(
    published_while_away: int,
) -> None:
    """The server counts what it wrote to the lost TCP connection as delivered, so the
    resumed subscription starts after it. The client notices that the restored top
    is ahead of what it got (with nothing published while away) or sees the gap in
    the offsets of the recovered publications (with some), and reads the difference
    from history."""
    async with serve() as (server, gate):
        app = server.app
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        await app.publish("feed", 1)
        assert offsets(await take(sub, 1)) == [1]

        gate.close()
        transport = client.connection.transport
        assert transport is not None
        transport.underlying_transport.pause_reading()
        for i in range(2, 5):  # written to the socket, never read by the client
            await app.publish("feed", i)
        client.connection.abort()
        await gate.session_gone()
        for i in range(5, 5 + published_while_away):  # recovered by the server
            await app.publish("feed", i)
        gate.open = True
        await reconnected.wait()

        assert client.welcome.resumed is True
        last = 4 + published_while_away
        got = await take(sub, last - 1)
        assert offsets(got) == list(range(2, last + 1))
        assert [p.data for p in got] == list(range(2, last + 1))
        assert sub.recovered is True
        await assert_nothing_more(sub, app)
        await client.close()


async def test_resumed_but_history_trimmed_reports_the_failed_recovery() -> None:
    async with serve(history_size=2) as (server, gate):
        app = server.app
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        await app.publish("feed", "seen")
        await take(sub, 1)
        gate.close()
        client.connection.abort()
        await gate.session_gone()
        for i in range(5):  # offsets 2..6, only 5 and 6 kept
            await app.publish("feed", i)
        gate.open = True
        await reconnected.wait()

        assert client.welcome.resumed is True
        event = await sub.next_event(TIMEOUT)
        assert event == RecoveryFailed("feed", sub.epoch or "", 6, sub.epoch or "", 1)
        assert sub.recovered is False and sub.offset == 6
        await app.publish("feed", "live")
        assert [(p.offset, p.data) for p in await take(sub, 1)] == [(7, "live")]
        await assert_nothing_more(sub, app)
        await client.close()


async def test_new_session_resubscribes_with_recover() -> None:
    """``session_ttl = 0``: nothing to resume, but history still holds the gap."""
    async with serve(session_ttl=0) as (server, gate):
        app = server.app
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        session = client.session
        sub = await client.subscribe("feed")
        await app.publish("feed", 0)
        await take(sub, 1)
        gate.close()
        client.connection.abort()
        await gate.session_gone()
        for i in range(1, 4):
            await app.publish("feed", i)
        gate.open = True
        await reconnected.wait()

        assert client.welcome.resumed is False and client.session != session
        got = await take(sub, 3)
        assert offsets(got) == [2, 3, 4] and [p.data for p in got] == [1, 2, 3]
        assert sub.recovered is True
        await assert_nothing_more(sub, app)
        assert [m.session for m in await app.presence("feed")] == [client.session]
        await client.close()


async def test_requests_around_a_drop() -> None:
    async with serve() as (server, gate):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        pending = asyncio.create_task(client.request(Hang()))
        await asyncio.wait_for(gate.hanging.wait(), TIMEOUT)
        gate.close()
        client.connection.abort()
        with pytest.raises(fastcomm.ConnectionClosed) as failed:  # in flight: fails
            await asyncio.wait_for(pending, TIMEOUT)
        assert failed.value.code == 1006

        await gate.was_refused()
        later = asyncio.create_task(client.request(Ping()))  # while reconnecting: waits
        with pytest.raises(fastcomm.ConnectionClosed):
            client.send(Ping())  # fire-and-forget cannot wait
        with pytest.raises(TimeoutError):
            await client.request(Ping(), timeout=0.05)
        assert not later.done()  # the gate is still closed
        gate.open = True
        assert isinstance(await asyncio.wait_for(later, TIMEOUT), Pong)
        await reconnected.wait()
        await client.close()


# -- when not to reconnect, and giving up --------------------------------------------------


async def test_no_reconnect_after_4003_nor_after_close() -> None:
    async with serve() as (server, _gate):
        client = await fastcomm.Client.connect(server.url, **FAST)
        sub = await client.subscribe("feed")
        assert await server.app.disconnect(client.session)  # 4003: revoked
        async with asyncio.timeout(TIMEOUT):
            assert [p async for p in sub] == []
        assert client.closed and client.reconnects == 0 and client.close_code == 4003
        with pytest.raises(fastcomm.ConnectionClosed) as ended:
            await client.receive(TIMEOUT)
        assert ended.value.code == 4003
        with pytest.raises(fastcomm.ConnectionClosed):
            await client.request(Ping())

        other = await fastcomm.Client.connect(server.url, **FAST)
        sub = await other.subscribe("feed")
        await other.close()
        assert other.closed and sub.closed and other.reconnects == 0
        with pytest.raises(fastcomm.ConnectionClosed) as closed:
            await sub.receive(TIMEOUT)
        assert closed.value.code == 1000


async def test_reconnect_false_ends_like_the_plain_client() -> None:
    async with serve() as (server, _gate):
        client = await fastcomm.Client.connect(server.url, reconnect=False)
        sub = await client.subscribe("feed")
        client.connection.abort()
        async with asyncio.timeout(TIMEOUT):
            assert [p async for p in sub] == []
            assert [m async for m in client] == []
        assert client.closed and client.close_code == 1006


@pytest.mark.parametrize(("status", "attempts"), [(503, 3), (401, 1)])
async def test_gives_up_after_max_attempts_or_a_final_refusal(status: int, attempts: int) -> None:
    async with serve() as (server, gate):
        client = await fastcomm.Client.connect(server.url, max_attempts=3, **FAST)
        sub = await client.subscribe("feed")
        gate.close(status)
        client.connection.abort()
        with pytest.raises(fastcomm.ConnectionClosed) as ended:
            await sub.receive(TIMEOUT)
        assert ended.value.code == 1006
        assert ("gave up" if status == 503 else "refused") in str(ended.value)
        assert gate.refusals == attempts
        assert client.closed and client.reconnects == 0
        with pytest.raises(fastcomm.ConnectionClosed):
            await client.request(Ping())


async def test_invalid_backoff_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="backoff"):
        await fastcomm.Client.connect("ws://127.0.0.1:9/ws", backoff_initial=0)
    with pytest.raises(ValueError, match="max_attempts"):
        await fastcomm.Client.connect("ws://127.0.0.1:9/ws", max_attempts=-1)


# -- a server that loses everything -----------------------------------------------------------


async def start_server(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "fastcomm", "serve", "--port", str(port)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(15):
        while True:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                assert proc.returncode is None, "the server exited"
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return proc


@pytest.mark.slow
async def test_server_killed_and_restarted_means_a_new_epoch() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    proc = await start_server(port)
    others: list[fastcomm.Client] = []
    try:
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(url, on_reconnect=reconnected, backoff_max=0.2)
        session = client.session
        sub = await client.subscribe("feed")
        for i in range(3):
            await client.publish("feed", i)
        assert offsets(await take(sub, 3)) == [1, 2, 3]
        old_epoch = sub.epoch

        proc.kill()  # SIGKILL: no close frame, history gone
        await proc.wait()
        await eventually(lambda: not client.connected)
        assert not client.closed  # it is reconnecting, against a refused port
        proc = await start_server(port)
        await reconnected.wait()

        assert client.welcome.resumed is False and client.session != session
        event = await sub.next_event(TIMEOUT)
        assert isinstance(event, RecoveryFailed)
        assert (event.previous_epoch, event.previous_offset) == (old_epoch, 3)
        assert event.epoch != old_epoch and event.offset == 0
        assert sub.recovered is False and (sub.epoch, sub.offset) == (event.epoch, 0)

        other = await fastcomm.Client.connect(url)
        others.append(other)
        await other.subscribe("feed")
        assert await other.publish("feed", "after the restart") == 1
        pub = await sub.receive(TIMEOUT)
        assert (pub.offset, pub.data) == (1, "after the restart")
        # The channel's first publication starts a stream: an epoch of its own, which a
        # position at offset 0 accepts without reporting a loss.
        assert sub.epoch == pub.epoch != old_epoch
        assert client.reconnects == 1
        await client.close()
    finally:
        for other in others:
            await other.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
