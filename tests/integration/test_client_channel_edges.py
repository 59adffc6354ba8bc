"""fastcomm.Client subscriptions at the edges, against real in-process servers.

What happens to a subscription when its ``subscribe`` or ``unsubscribe`` is
cut by a dropped connection, times out or is cancelled, when the server
unsubscribes it, refuses or holds its re-subscription on a new session, or
drops the connection again while the client re-subscribes. The invariant
throughout: the client and the server end up agreeing on what is subscribed.

The app's hooks (:class:`Door`) gate reconnection (503 while closed) and can
refuse or hold a subscribe, so every step happens at a known moment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import fastcomm
from fastcomm.client import Subscription, SubscriptionClosed
from fastcomm.config import Namespace
from fastcomm.protocol.channel_messages import Join, Subscribe, Subscribed, Unsubscribed
from fastcomm.protocol.messages import Ping, Pong
from tests.integration.conftest import eventually
from tests.integration.test_client_channels import FAST, TIMEOUT, Reconnects

USER = "u"


class Door:
    """The app's hooks. Connect: lets clients in as :data:`USER` while ``open``,
    503 while closed. Subscribe: holds the channels in ``hold`` until ``release``
    is set (``held`` says one is held), then refuses those in ``refuse``."""

    def __init__(self, app: fastcomm.App) -> None:
        self.open = True
        self.refused = asyncio.Event()
        self.gone: asyncio.Queue[str] = asyncio.Queue()
        self.refuse: set[str] = set()
        self.hold: set[str] = set()
        self.held = asyncio.Event()
        self.release = asyncio.Event()

        @app.on_connect
        def connect(request: fastcomm.ConnectRequest) -> fastcomm.Identity:
            if not self.open:
                self.refused.set()
                raise fastcomm.Rejected(503, "closed for the test")
            return fastcomm.Identity(user=USER)

        @app.on_disconnect
        def gone(conn: fastcomm.Connection) -> None:
            self.gone.put_nowait(conn.session_id)

        @app.authorize_subscribe
        def authorize(conn: fastcomm.Connection, channel: str) -> Any:
            if channel in self.hold:
                self.held.set()
                return self._decide(channel)
            return channel not in self.refuse

    async def _decide(self, channel: str) -> bool:
        await self.release.wait()
        return channel not in self.refuse

    def close(self) -> None:
        self.open = False
        self.refused.clear()

    async def drop(self, client: fastcomm.Client) -> None:
        """Close the door and drop the client's connection; return once the server saw it go."""
        self.close()
        session = client.session
        client.connection.abort()
        assert await asyncio.wait_for(self.gone.get(), TIMEOUT) == session


@asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[tuple[fastcomm.Server, Door]]:
    app = fastcomm.App()
    door = Door(app)
    async with fastcomm.Server(app, port=0, **options) as server:
        try:
            yield server, door
        finally:
            door.release.set()


async def subscribers(server: fastcomm.Server, channel: str) -> int:
    """How many connections the server has subscribed to ``channel``."""
    return (await server.app.api.channels(channel)).get(channel, 0)


async def unsubscribed_on_server(server: fastcomm.Server, channel: str) -> None:
    """Wait until no connection is subscribed to ``channel`` nor being subscribed
    (the hub counts a held or restoring subscribe from the moment it is accepted)."""
    hub = server.node.channels.hub

    async def none() -> bool:
        return channel not in hub.channels and await subscribers(server, channel) == 0

    await eventually(none)


async def assert_quiet(client: fastcomm.Client, server: fastcomm.Server, channel: str) -> None:
    """A publication on ``channel`` reaches neither the client's inbox nor a subscription."""
    await server.app.publish(channel, "nobody listens")
    assert isinstance(await client.request(Ping(), TIMEOUT), Pong)  # after it, on the same wire
    assert len(client.inbox) == 0
    assert channel not in client.subscriptions


def pause_reading(client: fastcomm.Client) -> Any:
    """Stop reading the socket: what the server sends waits in the kernel."""
    transport = client.connection.transport
    assert transport is not None
    underlying = transport.underlying_transport
    underlying.pause_reading()
    return underlying


# -- the server unsubscribes ----------------------------------------------------------------


async def test_a_server_side_unsubscribe_ends_the_subscription() -> None:
    async with serve() as (server, _door):
        client = await fastcomm.Client.connect(server.url)
        sub = await client.subscribe("feed")
        await server.app.publish("feed", "before")
        assert await server.app.api.unsubscribe(USER, "feed") == 1
        async with asyncio.timeout(TIMEOUT):
            assert [p.data async for p in sub] == ["before"]  # what came first, then the end
        with pytest.raises(SubscriptionClosed) as closed:
            await sub.receive(TIMEOUT)
        assert closed.value.channel == "feed" and "server" in closed.value.reason
        assert client.subscriptions == {} and not client.closed
        assert len(client.inbox) == 0  # the ``unsubscribed`` push went to the subscription
        again = await client.subscribe("feed")  # and it can be subscribed again
        await server.app.publish("feed", "again")
        assert (await again.receive(TIMEOUT)).data == "again"
        await client.close()


async def test_a_subscription_the_server_ends_before_its_reply_was_read_comes_back_closed() -> None:
    async with serve() as (server, _door):
        client = await fastcomm.Client.connect(server.url)
        reading = pause_reading(client)
        subscribing = asyncio.create_task(client.subscribe("feed"))

        async def subscribed_on_server() -> bool:
            return await subscribers(server, "feed") == 1

        await eventually(subscribed_on_server)
        assert await server.app.api.unsubscribe(USER, "feed") == 1
        reading.resume_reading()  # ``subscribed`` and ``unsubscribed`` are read at once
        sub = await asyncio.wait_for(subscribing, TIMEOUT)
        assert sub.closed and client.subscriptions == {}
        async with asyncio.timeout(TIMEOUT):
            assert [p async for p in sub] == []
        with pytest.raises(SubscriptionClosed):
            await sub.receive(TIMEOUT)
        assert len(client.inbox) == 0
        await client.close()


async def test_pushes_of_channels_subscribed_by_hand_go_to_the_inbox() -> None:
    namespaces = (Namespace(pattern="room:*", join_leave=True),)
    async with serve(namespaces=namespaces) as (server, _door):
        client = await fastcomm.Client.connect(server.url)
        assert isinstance(await client.request(Subscribe(channel="room:raw")), Subscribed)
        assert await client.receive(TIMEOUT) == Join("room:raw", client.session, USER)
        assert await server.app.api.unsubscribe(USER, "room:raw") == 1
        assert await client.receive(TIMEOUT) == Unsubscribed(None, "room:raw")
        await client.close()


async def test_a_hand_made_subscription_restored_by_a_resume_is_left_to_the_application() -> None:
    async with serve() as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        assert isinstance(await client.request(Subscribe(channel="raw")), Subscribed)
        await door.drop(client)
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is True
        restored = await client.receive(TIMEOUT)
        assert isinstance(restored, Subscribed) and (restored.id, restored.channel) == (None, "raw")
        assert await subscribers(server, "raw") == 1  # the client did not unsubscribe it
        await client.close()


# -- subscribe and unsubscribe around a dropped connection -------------------------------------


async def test_unsubscribing_while_reconnecting_drops_what_the_resume_restores() -> None:
    async with serve() as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        await door.drop(client)
        await asyncio.wait_for(door.refused.wait(), TIMEOUT)
        await sub.unsubscribe()  # nothing to send it on: returns at once
        assert sub.closed and client.subscriptions == {}
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is True  # the server restored "feed" ...
        await unsubscribed_on_server(server, "feed")  # ... and the client unsubscribed it
        await assert_quiet(client, server, "feed")
        await client.close()


@pytest.mark.parametrize("retry", [False, True])
async def test_a_subscribe_cut_by_a_drop(retry: bool) -> None:
    """The server subscribed, the reply was lost with the connection: ``subscribe``
    raises ConnectionClosed. The resumed session restores the channel; the client
    unsubscribes it, unless the application subscribed again meanwhile: then that
    subscription takes the restored one over."""
    async with serve() as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        pause_reading(client)
        cut = asyncio.create_task(client.subscribe("feed"))

        async def subscribed_on_server() -> bool:
            return await subscribers(server, "feed") == 1

        await eventually(subscribed_on_server)
        await door.drop(client)
        with pytest.raises(fastcomm.ConnectionClosed):
            await asyncio.wait_for(cut, TIMEOUT)
        assert client.subscriptions == {}
        await asyncio.wait_for(door.refused.wait(), TIMEOUT)
        again = asyncio.create_task(client.subscribe("feed")) if retry else None
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is True
        if again is None:
            await unsubscribed_on_server(server, "feed")
            await assert_quiet(client, server, "feed")
        else:
            sub = await asyncio.wait_for(again, TIMEOUT)
            assert client.subscriptions == {"feed": sub} and sub.epoch is not None
            await server.app.publish("feed", "live")
            pub = await sub.receive(TIMEOUT)
            assert (pub.offset, pub.data) == (sub.offset, "live")
            assert await subscribers(server, "feed") == 1 and len(client.inbox) == 0
        await client.close()


@pytest.mark.parametrize(
    ("how", "refused"), [("timeout", False), ("cancel", False), ("timeout", True)]
)
async def test_an_abandoned_subscribe_is_undone_on_the_server(how: str, refused: bool) -> None:
    """Undone in the background with ``unsubscribe``: answered once the server
    settled the ``subscribe`` (``not_subscribed`` if it refused it meanwhile)."""
    async with serve() as (server, door):
        client = await fastcomm.Client.connect(server.url)
        door.hold.add("slow")
        if how == "timeout":
            with pytest.raises(TimeoutError):
                await client.subscribe("slow", timeout=0.2)
        else:
            pending = asyncio.create_task(client.subscribe("slow"))
            await asyncio.wait_for(door.held.wait(), TIMEOUT)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
        assert client.subscriptions == {}
        if refused:
            door.refuse.add("slow")
        door.release.set()  # the server settles the subscribe, then takes the unsubscribe
        await unsubscribed_on_server(server, "slow")
        await assert_quiet(client, server, "slow")  # its late answer was dropped too
        door.refuse.clear()
        sub = await client.subscribe("slow")  # nothing left over on either side
        await server.app.publish("slow", "now")
        assert (await sub.receive(TIMEOUT)).data == "now"
        await client.close()


async def test_a_subscribe_abandoned_while_reconnecting_was_never_sent() -> None:
    async with serve() as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        await door.drop(client)
        await asyncio.wait_for(door.refused.wait(), TIMEOUT)
        with pytest.raises(TimeoutError):
            await client.subscribe("feed", timeout=0.1)  # waited for a connection, in vain
        door.refused.clear()
        await asyncio.wait_for(door.refused.wait(), TIMEOUT)  # one more attempt failed
        door.open = True
        await reconnected.wait()
        assert client.subscriptions == {} and await subscribers(server, "feed") == 0
        sub = await client.subscribe("feed")
        await server.app.publish("feed", "first")
        assert (await sub.receive(TIMEOUT)).data == "first"
        assert await subscribers(server, "feed") == 1
        await client.close()


async def test_subscribing_again_after_an_abandoned_subscribe_waits_for_its_undoing() -> None:
    """The server still holds the abandoned ``subscribe`` (its authorization is
    pending): a new ``subscribe`` goes out only once the client's ``unsubscribe``
    of it was answered. Sent at once it would get ``already_subscribed``, and the
    channel would stay subscribed on the server, untracked by the client."""
    async with serve() as (server, door):
        client = await fastcomm.Client.connect(server.url)
        door.hold.add("slow")
        with pytest.raises(TimeoutError):
            await client.subscribe("slow", timeout=0.2)
        with pytest.raises(TimeoutError, match="undoing"):
            await client.subscribe("slow", timeout=0.05)  # the server has not answered yet
        retries = asyncio.gather(
            client.subscribe("slow"), client.subscribe("slow"), return_exceptions=True
        )
        door.release.set()
        first, second = await asyncio.wait_for(retries, TIMEOUT)
        assert isinstance(first, Subscription)
        assert isinstance(second, fastcomm.ClientError) and "already" in str(second)
        assert client.subscriptions == {"slow": first}
        await server.app.publish("slow", "once")
        assert (await first.receive(TIMEOUT)).data == "once"
        assert await subscribers(server, "slow") == 1 and len(client.inbox) == 0
        await client.close()


async def test_an_unsubscribe_cut_by_a_drop_returns_and_stays_unsubscribed() -> None:
    """The server took the ``unsubscribe``; its answer was lost with the connection."""
    async with serve() as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        pause_reading(client)
        leaving = asyncio.create_task(sub.unsubscribe())
        await unsubscribed_on_server(server, "feed")  # the reply waits in the kernel
        await door.drop(client)
        assert await asyncio.wait_for(leaving, TIMEOUT) is None  # no ConnectionClosed
        assert sub.closed
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is True
        await assert_quiet(client, server, "feed")
        assert await subscribers(server, "feed") == 0
        await client.close()


async def test_an_unsubscribe_on_a_closing_connection_is_made_good_after_the_resume() -> None:
    """The connection is already closing: ``unsubscribe`` cannot be sent, the
    server never sees it and restores the channel; the client then unsubscribes it."""
    async with serve() as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        door.close()
        closing = asyncio.create_task(client.connection.close(4000, "going away"))
        await asyncio.sleep(0)  # one step: the CLOSE frame is sent
        assert client.connection.closed
        assert await sub.unsubscribe() is None  # no ConnectionClosed
        assert sub.closed and client.subscriptions == {}
        await asyncio.wait_for(closing, TIMEOUT)
        await asyncio.wait_for(door.refused.wait(), TIMEOUT)
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is True
        await unsubscribed_on_server(server, "feed")
        await assert_quiet(client, server, "feed")
        await client.close()


async def test_unsubscribing_what_the_server_already_dropped_returns_quietly() -> None:
    """The server's ``unsubscribed`` push and the client's ``unsubscribe`` cross on
    the wire: the ``not_subscribed`` answer is no error for the caller."""
    async with serve() as (server, _door):
        client = await fastcomm.Client.connect(server.url)
        sub = await client.subscribe("feed")
        reading = pause_reading(client)
        assert await server.app.api.unsubscribe(USER, "feed") == 1  # its push is not read yet
        leaving = asyncio.create_task(sub.unsubscribe())
        await asyncio.sleep(0)  # one step: it sends ``unsubscribe`` and waits
        reading.resume_reading()
        assert await asyncio.wait_for(leaving, TIMEOUT) is None
        assert sub.closed and client.subscriptions == {}
        assert isinstance(await client.request(Ping(), TIMEOUT), Pong)
        await client.close()


# -- re-subscribing on a new session ---------------------------------------------------------


async def test_a_refused_resubscription_ends_the_subscription() -> None:
    async with serve(session_ttl=0) as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        kept = await client.subscribe("other")
        door.refuse.add("feed")  # e.g. the user lost the right meanwhile
        await door.drop(client)
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is False
        with pytest.raises(SubscriptionClosed) as closed:
            await sub.receive(TIMEOUT)
        assert "re-subscribing failed" in closed.value.reason and "forbidden" in closed.value.reason
        assert client.subscriptions == {"other": kept} and client.connected
        await server.app.publish("other", "still here")
        assert (await kept.receive(TIMEOUT)).data == "still here"
        await client.close()


async def test_a_resubscription_that_times_out_ends_and_is_undone() -> None:
    async with serve(session_ttl=0) as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(
            server.url, on_reconnect=reconnected, timeout=1.0, **FAST
        )
        sub = await client.subscribe("feed")
        door.hold.add("feed")
        await door.drop(client)
        door.open = True
        await reconnected.wait()  # after the re-subscription gave up (1 s)
        with pytest.raises(SubscriptionClosed) as closed:
            await sub.receive(TIMEOUT)
        assert "re-subscribing failed" in closed.value.reason
        door.release.set()  # the server subscribes it late, then takes the unsubscribe
        await unsubscribed_on_server(server, "feed")
        await assert_quiet(client, server, "feed")
        await client.close()


async def test_unsubscribing_while_the_resubscription_is_held() -> None:
    async with serve(session_ttl=0) as (server, door):
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        door.hold.add("feed")
        await door.drop(client)
        door.open = True
        await asyncio.wait_for(door.held.wait(), TIMEOUT)  # re-subscribing, held by the server
        leaving = asyncio.create_task(sub.unsubscribe())  # answered after the subscribe it follows
        door.release.set()
        await asyncio.wait_for(leaving, TIMEOUT)
        await reconnected.wait()
        assert sub.closed and client.subscriptions == {}
        await unsubscribed_on_server(server, "feed")
        await assert_quiet(client, server, "feed")
        await client.close()


async def test_a_subscribe_in_flight_when_the_connection_ends_for_good() -> None:
    async with serve() as (server, _door):
        client = await fastcomm.Client.connect(server.url, reconnect=False)
        pause_reading(client)
        cut = asyncio.create_task(client.subscribe("feed"))

        async def subscribed_on_server() -> bool:
            return await subscribers(server, "feed") == 1

        await eventually(subscribed_on_server)
        client.connection.abort()
        with pytest.raises(fastcomm.ConnectionClosed) as closed:
            await asyncio.wait_for(cut, TIMEOUT)
        assert closed.value.code == 1006
        assert client.closed and client.subscriptions == {}
        with pytest.raises(fastcomm.ConnectionClosed):
            await client.subscribe("other")


async def test_a_connection_lost_while_resubscribing_is_replaced_and_recovers() -> None:
    async with serve(session_ttl=0) as (server, door):
        app = server.app
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("feed")
        await app.publish("feed", 1)
        assert (await sub.receive(TIMEOUT)).offset == 1
        door.hold.add("feed")
        await door.drop(client)
        await app.publish("feed", 2)
        door.open = True
        await asyncio.wait_for(door.held.wait(), TIMEOUT)  # re-subscribing, held by the server
        door.hold.clear()
        await door.drop(client)  # the new connection goes too
        await app.publish("feed", 3)
        door.open = True
        await eventually(lambda: reconnected.count == 2)
        assert client.reconnects == 2 and client.connected
        got = [await sub.receive(TIMEOUT) for _ in range(2)]
        assert [(p.offset, p.data) for p in got] == [(2, 2), (3, 3)]
        assert sub.recovered is True and sub.duplicates == 0
        await client.close()


async def test_without_recover_a_new_session_goes_on_from_the_top() -> None:
    async with serve(session_ttl=0) as (server, door):
        app = server.app
        reconnected = Reconnects()
        client = await fastcomm.Client.connect(server.url, on_reconnect=reconnected, **FAST)
        sub = await client.subscribe("live", recover=False)
        await app.publish("live", "a")
        assert (await sub.receive(TIMEOUT)).data == "a"
        await door.drop(client)
        for data in ("b", "c"):  # missed for good: not asked for
            await app.publish("live", data)
        door.open = True
        await reconnected.wait()
        assert client.welcome.resumed is False
        assert (sub.offset, sub.recovered) == (3, False)
        with pytest.raises(TimeoutError):
            await sub.next_event(timeout=0)  # no RecoveryFailed: nothing was to be recovered
        await app.publish("live", "d")
        pub = await sub.receive(TIMEOUT)
        assert (pub.offset, pub.data) == (4, "d") and sub.pending == 0
        await client.close()


# -- on_reconnect ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["none", "async", "failing"])
async def test_on_reconnect_may_be_absent_async_or_failing(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def later(client: fastcomm.Client) -> None:
        await asyncio.sleep(0)
        seen.append(client.session)

    def failing(client: fastcomm.Client) -> None:
        seen.append(client.session)
        raise RuntimeError("application bug")

    callback = {"none": None, "async": later, "failing": failing}[kind]
    caplog.set_level(logging.ERROR, "fastcomm.client")
    async with serve() as (server, door):
        client = await fastcomm.Client.connect(server.url, on_reconnect=callback, **FAST)
        sub = await client.subscribe("feed")
        await door.drop(client)
        door.open = True
        await eventually(lambda: client.reconnects == 1)
        if callback is not None:
            await eventually(lambda: seen == [client.session])
        failed = [r for r in caplog.records if "on_reconnect callback failed" in r.getMessage()]
        assert len(failed) == (kind == "failing")
        await server.app.publish("feed", "after")  # the client goes on either way
        assert (await sub.receive(TIMEOUT)).data == "after"
        await client.close()


# -- events ----------------------------------------------------------------------------------


async def test_events_yields_presence_events_until_the_subscription_ends() -> None:
    namespaces = (Namespace(pattern="room:*", join_leave=True),)
    async with serve(namespaces=namespaces) as (server, _door):
        alice = await fastcomm.Client.connect(server.url)
        bob = await fastcomm.Client.connect(server.url)
        sub: Subscription = await alice.subscribe("room:1")
        events = sub.events()
        assert await asyncio.wait_for(anext(events), TIMEOUT) == Join("room:1", alice.session, USER)
        await bob.subscribe("room:1")
        assert await asyncio.wait_for(anext(events), TIMEOUT) == Join("room:1", bob.session, USER)
        assert repr(sub) == f"<Subscription 'room:1' {sub.epoch}:0 active>"
        await alice.close()
        async with asyncio.timeout(TIMEOUT):
            assert [event async for event in events] == []
        assert repr(sub) == f"<Subscription 'room:1' {sub.epoch}:0 closed>"
        await bob.close()
