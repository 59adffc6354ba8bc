"""Channels when things go wrong, over real sockets: a failing broker, async and
failing authorization hooks, requests racing a slow backend, the server taking a
subscription away, and data no encoding can carry.

The broker is the in-memory one, made to fail (as a networked backend does when
it is down) or to wait for the test, through ``App.use_broker`` — the way an
application plugs in its own backend.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import struct
from typing import Any

import msgspec
import pytest
import websockets

import fastcomm
from fastcomm.channels.memory import MemoryBroker
from fastcomm.config import Namespace
from fastcomm.protocol.channel_messages import Join, Leave, Member
from tests.integration.conftest import eventually, running
from tests.integration.rawws import RawWS
from tests.integration.test_channels import (
    Peer,
    client_frame,
    gone_session,
    raw_client,
    read_frame,
    tracked,
    with_users,
)

DOWN = "backend down"
TIMEOUT = 10.0


class FlakyBroker(MemoryBroker):
    """A :class:`MemoryBroker` whose operations fail while named in ``failing``
    and wait while their gate in ``gates`` is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.gates: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, int] = {}
        self.subscribed: set[str] = set()  # channels this node is subscribed to

    def hold(self, operation: str) -> asyncio.Event:
        """Make ``operation`` wait until the returned event is set."""
        gate = self.gates[operation] = asyncio.Event()
        return gate

    async def _step(self, operation: str) -> None:
        gate = self.gates.get(operation)
        if gate is not None:
            self.waiting[operation] = self.waiting.get(operation, 0) + 1
            try:
                await gate.wait()
            finally:
                self.waiting[operation] -= 1
        if operation in self.failing:
            raise ConnectionError(f"{operation}: {DOWN}")

    async def publish(self, channel: str, data: Any, **options: Any) -> Any:
        await self._step("publish")
        return await super().publish(channel, data, **options)

    async def publish_event(self, channel: str, event: Join | Leave) -> None:
        await self._step("publish_event")
        await super().publish_event(channel, event)

    async def history(self, channel: str, **options: Any) -> Any:
        await self._step("history")
        return await super().history(channel, **options)

    async def position(self, channel: str) -> Any:
        await self._step("position")
        return await super().position(channel)

    async def presence_add(self, channel: str, member: Member, ttl: float = 0.0) -> None:
        await self._step("presence_add")
        await super().presence_add(channel, member, ttl)

    async def presence_remove(self, channel: str, session: str) -> None:
        await self._step("presence_remove")
        await super().presence_remove(channel, session)

    async def presence_leave(self, session: str, channels: list[str]) -> None:
        await self._step("presence_remove")
        await super().presence_leave(session, channels)

    async def presence(self, channel: str) -> list[Member]:
        await self._step("presence")
        return await super().presence(channel)

    def start(self, deliver: Any, **node: Any) -> Any:
        """The node's handle, its subscribe and unsubscribe made flaky too."""
        handle = super().start(deliver, **node)
        subscribe, unsubscribe = handle.subscribe, handle.unsubscribe

        async def flaky_subscribe(channel: str) -> None:
            await self._step("subscribe")
            await subscribe(channel)
            self.subscribed.add(channel)

        async def flaky_unsubscribe(channel: str) -> None:
            await self._step("unsubscribe")
            await unsubscribe(channel)
            self.subscribed.discard(channel)

        handle.subscribe = flaky_subscribe
        handle.unsubscribe = flaky_unsubscribe
        return handle


def flaky_app() -> tuple[fastcomm.App, FlakyBroker]:
    app = with_users(fastcomm.App())
    broker = FlakyBroker()
    app.use_broker(broker)
    return app, broker


def held_subscribe() -> tuple[fastcomm.App, asyncio.Future[bool], asyncio.Event]:
    """An app (users from ``?user=``) whose subscribe hook waits for ``decide``;
    ``asked`` is set once a subscribe is waiting."""
    app = with_users(fastcomm.App())
    decide: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    asked = asyncio.Event()

    @app.authorize_subscribe
    async def may_subscribe(conn: fastcomm.Connection, channel: str) -> bool:
        asked.set()
        return await decide

    return app, decide, asked


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


# -- a broker that fails ----------------------------------------------------------------


async def test_backend_failures_are_answered_unavailable_and_the_connection_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, broker = flaky_app()
    async with running(app) as server:
        peer = await Peer.connect(server.url)
        await peer.subscribe("news")
        broker.failing |= {"publish", "presence", "history"}
        with caplog.at_level(logging.WARNING, logger="fastcomm.channels"):
            for kind, extra in (("publish", {"data": 1}), ("presence", {}), ("history", {})):
                reply = await peer.request(type=kind, channel="news", **extra)
                assert (reply["type"], reply["code"], reply["message"]) == (
                    "error",
                    "unavailable",
                    "channel backend unavailable",
                ), kind
                assert DOWN not in str(reply)  # the backend's own words stay in the log
        assert logged(caplog, "channel backend failed") and logged(caplog, DOWN)

        broker.failing.clear()  # the backend is back: the same connection carries on
        published = await peer.request(type="publish", channel="news", data=2)
        assert (published["type"], published["offset"]) == ("published", 1)
        (message,) = await peer.messages(1)
        assert message["data"] == 2


@pytest.mark.parametrize("operation", ["subscribe", "position", "history"])
async def test_subscribe_while_the_backend_is_down_is_unavailable_then_can_be_retried(
    operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, broker = flaky_app()
    async with running(app) as server:
        peer = await Peer.connect(server.url)
        extra: dict[str, Any] = {}
        if operation == "history":  # only a subscribe that recovers reads the history
            extra = {"recover": {"offset": 0, "epoch": "old"}}
        broker.failing.add(operation)
        with caplog.at_level(logging.WARNING, logger="fastcomm.channels"):
            reply = await peer.request(type="subscribe", channel="news", **extra)
        assert (reply["type"], reply["code"]) == ("error", "unavailable")
        assert logged(caplog, "channel backend failed")
        await eventually(lambda: server.node.channels.hub.count() == 0)

        broker.failing.clear()
        again = await peer.subscribe("news", **extra)  # not "already subscribed"
        assert again["channel"] == "news"
        await server.app.publish("news", "after")
        (message,) = await peer.messages(1)
        assert message["data"] == "after"


async def test_presence_backend_failures_do_not_fail_subscriptions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, broker = flaky_app()
    namespaces = (Namespace(pattern="room:*", join_leave=True),)
    async with running(app, namespaces=namespaces) as server:
        alice = await Peer.connect(server.url, "?user=alice")
        bob = await Peer.connect(server.url, "?user=bob")
        await bob.subscribe("room:1")
        assert (await bob.recv())["type"] == "join"  # bob's own join

        broker.failing |= {"presence_add", "presence_remove"}
        with caplog.at_level(logging.WARNING, logger="fastcomm.channels"):
            await alice.subscribe("room:1")  # subscribed, though presence could not be stored
            await eventually(lambda: logged(caplog, "joining presence of 'room:1' failed"))
            await server.app.publish("room:1", "still live")
            assert (await alice.messages(1))[0]["data"] == "still live"
            reply = await alice.request(type="unsubscribe", channel="room:1")
            assert reply["type"] == "unsubscribed"
            await eventually(lambda: logged(caplog, "leaving presence of 'room:1' failed"))
        # bob saw neither alice's join nor her leave (both failed), just the publication.
        assert (await bob.messages(1))[0]["data"] == "still live"
        await bob.nothing_pending()


async def test_a_failed_broker_unsubscribe_is_logged_and_the_channel_still_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, broker = flaky_app()
    async with running(app) as server:
        peer = await Peer.connect(server.url)
        await peer.subscribe("news")
        broker.failing.add("unsubscribe")
        with caplog.at_level(logging.ERROR, logger="fastcomm.channels"):
            await peer.request(type="unsubscribe", channel="news")
            await eventually(lambda: logged(caplog, "unsubscribing the node from channel 'news'"))
        assert server.node.channels.hub.count() == 0
        await peer.subscribe("news")
        await server.app.publish("news", "again")
        assert (await peer.messages(1))[0]["data"] == "again"  # delivered once, not twice
        await peer.nothing_pending()


# -- requests racing a slow backend ----------------------------------------------------


async def test_subscribers_arriving_while_the_node_subscribes_all_go_live() -> None:
    app, broker = flaky_app()
    async with running(app) as server:
        gate = broker.hold("subscribe")
        peers = [await Peer.connect(server.url) for _ in range(3)]
        for peer in peers:
            await peer.send(id=1, type="subscribe", channel="news")
        await eventually(lambda: server.node.channels.hub.subscribers("news") == 3)
        assert broker.waiting["subscribe"] == 1  # one broker subscription for the node
        gate.set()
        for peer in peers:
            assert (await peer.recv())["type"] == "subscribed"
        await server.app.publish("news", "hello")
        for peer in peers:
            assert (await peer.messages(1))[0]["data"] == "hello"


@pytest.mark.parametrize(
    ("held", "fails"), [("subscribe", False), ("subscribe", True), ("position", False)]
)
async def test_leaving_while_the_subscription_is_set_up_releases_the_channel(
    held: str, fails: bool
) -> None:
    app, broker = flaky_app()
    async with running(app) as server:
        gate = broker.hold(held)
        peer = await Peer.connect(server.url)
        await peer.send(id=1, type="subscribe", channel="news")
        await eventually(lambda: broker.waiting.get(held) == 1)
        peer.abort()  # gone while the broker is still answering
        await eventually(lambda: not server.node.connections)
        if fails:
            broker.failing.add(held)
        gate.set()
        await eventually(lambda: server.node.channels.hub.count() == 0)
        await eventually(lambda: not server.node.router.inflight)
        assert not broker.subscribed  # no broker subscription left behind


async def test_unsubscribe_sent_while_the_subscribe_hook_decides_is_answered_after_it() -> None:
    app, decide, _ = held_subscribe()

    async with running(app) as server:
        peer = await Peer.connect(server.url)
        await peer.send(id=1, type="subscribe", channel="news")
        await peer.send(id=2, type="unsubscribe", channel="news")
        decide.set_result(True)
        assert (await peer.recv())["type"] == "subscribed"
        assert await peer.recv() == {"type": "unsubscribed", "id": 2, "channel": "news"}
        await eventually(lambda: server.node.channels.hub.count() == 0)


async def test_disconnecting_while_the_subscribe_hook_decides_leaves_nothing_behind() -> None:
    app, decide, asked = held_subscribe()

    async with running(app) as server:
        peer = await Peer.connect(server.url, "?user=alice")
        await peer.send(id=1, type="subscribe", channel="news")
        await asyncio.wait_for(asked.wait(), 5)
        # A client and a server unsubscribe wait for that subscribe; then the client goes.
        await peer.send(id=2, type="unsubscribe", channel="news")
        await eventually(lambda: len(server.node.router.inflight) == 2)
        assert await server.node.api.unsubscribe("alice", "news") == 1
        peer.abort()
        await eventually(lambda: not server.node.connections)
        decide.set_result(True)
        await eventually(lambda: not server.node.router.inflight)
        assert server.node.channels.hub.count() == 0
        assert not server.node.channels.hub.channels  # no subscription is being set up
        # The session resumes without the channel it never got.
        back = await Peer.connect(server.url, f"?user=alice&resume={peer.token}")
        assert back.welcome["resumed"] is True
        await back.nothing_pending()


async def test_a_subscription_completing_after_the_servers_close_sends_nothing() -> None:
    app, broker = flaky_app()
    async with running(app) as server:
        gate = broker.hold("position")
        ws, _, _ = await RawWS.connect("127.0.0.1", server.port)
        welcome = json.loads((await ws.recv_frame())[1])
        ws.send_text('{"type":"subscribe","id":1,"channel":"news"}')
        await eventually(lambda: broker.waiting.get("position") == 1)
        assert await server.app.disconnect(welcome["session"], code=4000)
        gate.set()  # the subscription completes on a closed connection
        await eventually(lambda: not server.node.router.inflight)
        opcode, payload = await ws.recv_frame()
        assert (opcode, payload[:2]) == (8, b"\x0f\xa0")  # the close, no "subscribed"
        ws.send_close(4000)
        with pytest.raises(EOFError):
            await ws.recv_frame()
        await eventually(lambda: not server.node.connections)
        await eventually(lambda: server.node.channels.hub.count() == 0)
        assert await server.app.presence("news") == []


async def test_a_catch_up_too_big_for_a_slow_reader_is_cut_4008_and_resumes_where_it_stopped() -> (
    None
):
    app = fastcomm.App()
    gone = tracked(app)
    options = {"max_outbound_buffer": 64 * 1024, "history_size": 1000, "history_ttl": 600.0}
    async with running(app, **options) as server:
        total, pad = 300, "x" * 32 * 1024  # ~10 MB: more than the socket buffers hold
        for n in range(1, total + 1):
            position = await server.app.publish("feed", {"n": n, "pad": pad})
        reader, writer = await raw_client(server.port)
        welcome = msgspec.json.decode((await read_frame(reader))[1])
        recover = {"offset": 0, "epoch": position.epoch}
        request = {"type": "subscribe", "id": 1, "channel": "feed", "recover": recover}
        writer.write(client_frame(msgspec.json.encode(request)))
        frames = []
        while (frame := await asyncio.wait_for(read_frame(reader), TIMEOUT))[0] != 8:
            frames.append(msgspec.json.decode(frame[1]))
        assert struct.unpack("!H", frame[1][:2])[0] == 4008
        assert frames[0]["type"] == "subscribed" and frames[0]["recovered"] is True
        got = [m["offset"] for m in frames[1:]]
        assert 0 < len(got) < total and got == list(range(1, len(got) + 1))
        writer.write(client_frame(struct.pack("!H", 1000), opcode=8))
        writer.close()
        assert await gone_session(gone) == welcome["session"]

        # Each resume catches up from the last publication that went out, until the end
        # (a catch-up is one burst: beyond the buffers, a resumed connection is cut too).
        token = welcome["resume_token"]
        for _ in range(50):
            back = await Peer.connect(server.url, f"?resume={token}")
            token = back.token
            try:
                restored = await back.recv()
                assert (restored["id"], restored["recovered"]) == (None, True)
                while len(got) < total:
                    got.append((await back.messages(1))[0]["offset"])
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 4008
                assert await gone_session(gone) == welcome["session"]
                continue
            break
        assert got == list(range(1, total + 1))  # no gap, no duplicate, across every cut
        await back.nothing_pending()


async def test_restored_subscriptions_that_the_hook_now_refuses_are_pushed_unsubscribed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = with_users(fastcomm.App())
    verdicts: dict[str, str] = {}

    @app.authorize_subscribe
    def may_subscribe(conn: fastcomm.Connection, channel: str) -> Any:
        verdict = verdicts.get(channel, "yes")
        if verdict == "raise":
            raise RuntimeError("the hook broke")
        if verdict.startswith("async"):

            async def later() -> bool:
                await asyncio.sleep(0)
                if verdict == "async-raise":
                    raise RuntimeError("the async hook broke")
                return verdict == "async-yes"

            return later()
        return verdict == "yes"

    async with running(app) as server:
        peer = await Peer.connect(server.url, "?user=alice")
        channels = ["a", "b", "c", "d", "e", "f"]
        for channel in channels:
            await peer.subscribe(channel)
        peer.abort()
        await eventually(lambda: not server.node.connections)
        verdicts.update(a="raise", b="no", c="async-raise", d="async-no", e="async-yes")
        with caplog.at_level(logging.ERROR, logger="fastcomm.channels"):
            back = await Peer.connect(server.url, f"?user=alice&resume={peer.token}")
            assert back.welcome["resumed"] is True
            pushes = {m["channel"]: m for m in [await back.recv() for _ in channels]}
        assert {c: (m["type"], m["id"]) for c, m in pushes.items()} == {
            "a": ("unsubscribed", None),
            "b": ("unsubscribed", None),
            "c": ("unsubscribed", None),
            "d": ("unsubscribed", None),
            "e": ("subscribed", None),
            "f": ("subscribed", None),
        }
        assert logged(caplog, "subscribe hook failed while restoring 'a'")
        assert logged(caplog, "restoring channel 'c' failed")
        await back.nothing_pending()
        assert sorted(server.node.channels.hub.channels) == ["e", "f"]


# -- authorization hooks ----------------------------------------------------------------


async def test_async_subscribe_hook_grants_refuses_or_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = with_users(fastcomm.App())

    @app.authorize_subscribe
    async def may_subscribe(conn: fastcomm.Connection, channel: str) -> bool:
        await asyncio.sleep(0)
        if channel == "vip":
            raise fastcomm.WireError("forbidden", "members only", {"channel": channel})
        if channel == "broken":
            raise RuntimeError("the directory service is down")
        return channel != "private"

    async with running(app) as server:
        peer = await Peer.connect(server.url)
        await peer.subscribe("public")
        refused = await peer.request(type="subscribe", channel="private")
        assert (refused["code"], refused["details"]) == ("forbidden", {"channel": "private"})
        vip = await peer.request(type="subscribe", channel="vip")
        assert (vip["code"], vip["message"]) == ("forbidden", "members only")
        with caplog.at_level(logging.ERROR, logger="fastcomm"):
            broken = await peer.request(type="subscribe", channel="broken")
        assert broken["code"] == "internal" and "directory" not in str(broken)
        assert logged(caplog, broken["details"]["correlation_id"])
        assert sorted(server.node.channels.hub.channels) == ["public"]
        # A refused channel is not reserved: it can be asked for again.
        again = await peer.request(type="subscribe", channel="private")
        assert again["code"] == "forbidden"


async def test_publish_hook_decides_instead_of_the_subscription() -> None:
    app = with_users(fastcomm.App())

    @app.authorize_publish
    def may_publish(conn: fastcomm.Connection, channel: str, data: Any) -> bool:
        if data == "boom":
            raise fastcomm.WireError("rate_limited", "slow down")
        return conn.user == "editor"

    async with running(app) as server:
        editor = await Peer.connect(server.url, "?user=editor")
        reader = await Peer.connect(server.url, "?user=reader")
        await reader.subscribe("news")
        denied = await reader.request(type="publish", channel="news", data="hi")
        assert (denied["code"], denied["details"]) == ("forbidden", {"channel": "news"})
        raised = await editor.request(type="publish", channel="news", data="boom")
        assert (raised["code"], raised["message"]) == ("rate_limited", "slow down")
        await editor.send(type="publish", channel="news", data="no id")  # no reply, delivered
        assert (await reader.messages(1))[0]["data"] == "no id"
        await editor.nothing_pending()


async def test_unsubscribe_and_presence_without_an_id_get_no_success_reply() -> None:
    async with running() as server:
        peer = await Peer.connect(server.url)
        await peer.subscribe("news")
        await peer.send(type="presence", channel="news")
        await peer.send(type="unsubscribe", channel="news")
        await peer.nothing_pending()
        await eventually(lambda: server.node.channels.hub.count() == 0)
        await peer.send(type="unsubscribe", channel="news")  # an error is still reported
        reply = await peer.recv()
        assert (reply["id"], reply["code"]) == (None, "not_subscribed")


# -- the server takes a subscription away -------------------------------------------------


async def test_server_api_unsubscribe_pushes_unsubscribed_and_stops_delivery() -> None:
    app = with_users(fastcomm.App())
    async with running(app) as server:
        alice1 = await Peer.connect(server.url, "?user=alice")
        alice2 = await Peer.connect(server.url, "?user=alice")
        bob = await Peer.connect(server.url, "?user=bob")
        for peer in (alice1, alice2, bob):
            await peer.subscribe("news")
        await alice2.request(type="unsubscribe", channel="news")

        assert await server.node.api.unsubscribe("alice", "news") == 1  # alice2 had left already
        assert await alice1.recv() == {"type": "unsubscribed", "id": None, "channel": "news"}
        await server.app.publish("news", "for bob")
        assert (await bob.messages(1))[0]["data"] == "for bob"
        await alice1.nothing_pending()
        await alice2.nothing_pending()
        assert await server.node.api.unsubscribe("alice", "news") == 0
        with pytest.raises(ValueError):
            await server.node.api.unsubscribe("alice", "bad name")
        # The channel can be subscribed again by the same connection.
        await alice1.subscribe("news")


async def test_server_api_unsubscribe_while_the_subscription_is_being_set_up() -> None:
    # Every request with an id gets exactly one reply (docs/PROTOCOL.md): the subscribe
    # in flight is answered first, then the subscription is taken away.
    app, broker = flaky_app()
    async with running(app) as server:
        gate = broker.hold("position")
        alice = await Peer.connect(server.url, "?user=alice")
        await alice.send(id=1, type="subscribe", channel="news")
        await eventually(lambda: broker.waiting.get("position") == 1)
        assert await server.node.api.unsubscribe("alice", "news") == 1
        gate.set()
        reply = await alice.recv()
        assert (reply["type"], reply["id"], reply["channel"]) == ("subscribed", 1, "news")
        assert await alice.recv() == {"type": "unsubscribed", "id": None, "channel": "news"}
        await eventually(lambda: server.node.channels.hub.count() == 0)
        await server.app.publish("news", "not for alice")
        await alice.nothing_pending()


async def test_client_and_server_unsubscribe_both_waiting_for_one_subscribe() -> None:
    app, decide, asked = held_subscribe()

    async with running(app) as server:
        alice = await Peer.connect(server.url, "?user=alice")
        await alice.send(id=1, type="subscribe", channel="news")
        await asyncio.wait_for(asked.wait(), 5)
        await alice.send(id=2, type="unsubscribe", channel="news")
        await eventually(lambda: len(server.node.router.inflight) == 2)
        assert await server.node.api.unsubscribe("alice", "news") == 1
        decide.set_result(True)
        assert (await alice.recv())["type"] == "subscribed"
        assert await alice.recv() == {"type": "unsubscribed", "id": 2, "channel": "news"}
        await alice.nothing_pending()  # the client's unsubscribe came first: no push


async def test_server_api_unsubscribe_of_a_subscribe_then_refused_pushes_nothing() -> None:
    app, decide, asked = held_subscribe()

    async with running(app) as server:
        alice = await Peer.connect(server.url, "?user=alice")
        await alice.send(id=1, type="subscribe", channel="news")
        await asyncio.wait_for(asked.wait(), 5)
        await server.node.api.unsubscribe("alice", "news")
        decide.set_result(False)
        reply = await alice.recv()
        assert (reply["type"], reply["id"], reply["code"]) == ("error", 1, "forbidden")
        await alice.nothing_pending()  # no "unsubscribed" for a channel it never had


# -- data no encoding can carry -------------------------------------------------------------


def nested_dicts(depth: int) -> Any:
    data: Any = 1
    for _ in range(depth):
        data = {"a": data}
    return data


async def test_undeliverable_data_from_clients_is_refused_with_its_path() -> None:
    async with running() as server:
        json_peer = await Peer.connect(server.url)
        await json_peer.subscribe("news")
        too_deep = await json_peer.request(type="publish", channel="news", data=nested_dicts(80))
        assert too_deep["code"] == "invalid_message"
        assert too_deep["details"]["reason"] == "nested more than 64 deep"
        assert too_deep["details"]["path"].startswith("$.data.a.a")

        mp = await Peer.connect(server.url, binary=True)
        await mp.subscribe("news")
        cases = [
            ({"ok": {1: "x"}}, "$.data.ok", "object keys must be strings"),
            ({"when": datetime.datetime.now(datetime.UTC)}, "$.data.when", "datetime"),
            ([msgspec.msgpack.Ext(1, b"raw")], "$.data[0]", "Ext"),
        ]
        for data, path, reason in cases:
            reply = await mp.request(type="publish", channel="news", data=data)
            assert reply["code"] == "invalid_message", data
            assert reply["details"]["path"] == path
            assert reason in reply["details"]["reason"]
        assert (await server.node.api.history("news")).publications == []  # nothing stored
        await json_peer.nothing_pending()


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("\ud800", "at $"),
        ({"k\udfff": 1}, "at $"),
        ({"list": [1, {"deep": nested_dicts(70)}]}, "nested more than 64 deep"),
        (2**64, "integer out of range"),
    ],
)
async def test_server_publish_refuses_undeliverable_data_before_storing_it(
    data: Any, where: str
) -> None:
    async with running() as server:
        peer = await Peer.connect(server.url)
        await peer.subscribe("news")
        with pytest.raises(ValueError, match="data cannot be delivered") as refused:
            await server.app.publish("news", data)
        assert where in str(refused.value)
        await peer.nothing_pending()
        assert (await server.app.publish("news", "fine")).offset == 1


async def test_server_publish_of_data_nested_beyond_recursion_is_a_value_error() -> None:
    data: Any = []
    for _ in range(100_000):
        data = [data]
    async with running() as server:
        with pytest.raises(ValueError, match="nested too deeply"):
            await server.app.publish("news", data)
