"""``GET /metrics``: Prometheus text that parses, and counters that follow traffic."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import websockets
from prometheus_client.parser import text_string_to_metric_families

import fastcomm
from tests.integration.conftest import running
from tests.waiting import eventually

app = fastcomm.App()


class Add(fastcomm.Message, tag="add"):
    a: int
    b: int


@app.on(Add)
def add(msg: Add, conn: fastcomm.Connection) -> int:
    return msg.a + msg.b


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> tuple[str, Samples]:
    """GET /metrics; return its content type and every sample by (name, labels)."""

    def get() -> tuple[str, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            return resp.headers["Content-Type"], resp.read().decode()

    content_type, text = await asyncio.to_thread(get)
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return content_type, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def exchange(ws: Any, request: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(request))
    reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


async def test_metrics_parse_and_follow_traffic() -> None:
    async with running(app) as srv:
        srv.node.router.sample_every = 1  # time every message, so a short test fills the histogram
        content_type, before = await scrape(srv.port)
        assert content_type.startswith("text/plain")
        for name in (
            "fastcomm_open_connections", "fastcomm_connections_total", "fastcomm_sessions",
            "fastcomm_messages_received_total", "fastcomm_messages_sent_total",
            "fastcomm_slow_consumers_total", "fastcomm_channels", "fastcomm_channel_subscribers",
            "fastcomm_routing_latency_seconds_count", "fastcomm_uptime_seconds",
        ):  # fmt: skip
            assert any(key[0] == name for key in before), name
        assert value(before, "fastcomm_messages_received_total") == 0

        async with websockets.connect(srv.url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            for rid in range(1, 6):
                assert (await exchange(ws, {"type": "add", "id": rid, "a": 1, "b": 2}))["data"] == 3
            assert (await exchange(ws, {"type": "ping", "id": 9}))["type"] == "pong"
            assert (await exchange(ws, {"type": "nope", "id": 10}))["code"] == "unknown_type"
            reply = await exchange(ws, {"type": "subscribe", "id": 11, "channel": "news"})
            assert reply["type"] == "subscribed"
            _, during = await scrape(srv.port)

        assert value(during, "fastcomm_open_connections") == 1
        assert value(during, "fastcomm_connections_total") == 1
        assert value(during, "fastcomm_sessions") == 1
        assert value(during, "fastcomm_messages_received_total") == 8
        assert value(during, "fastcomm_messages_routed_total", type="add") == 5
        assert value(during, "fastcomm_messages_routed_total", type="ping") == 1
        assert value(during, "fastcomm_messages_sent_total") >= 9  # welcome + 8 replies
        assert value(during, "fastcomm_errors_total", code="unknown_type") == 1
        assert value(during, "fastcomm_channels") == 1
        assert value(during, "fastcomm_channel_subscribers") == 1
        timed = value(during, "fastcomm_routing_latency_seconds_count")
        assert timed == 7  # every message that decoded
        assert value(during, "fastcomm_routing_latency_seconds_bucket", le="+Inf") == timed
        assert 0 < value(during, "fastcomm_routing_latency_seconds_sum") < 1

        async def gone() -> bool:
            _, after = await scrape(srv.port)
            return value(after, "fastcomm_open_connections") == 0

        await eventually(gone, 5, "the connection is gone from the metrics")
        _, after = await scrape(srv.port)
        assert value(after, "fastcomm_channels") == 0
        assert value(after, "fastcomm_sessions_resumable") == 1


async def test_buckets_are_cumulative_and_sampled() -> None:
    async with running(app) as srv:
        srv.node.router.sample_every = 4
        async with websockets.connect(srv.url) as ws:
            await ws.recv()
            for rid in range(1, 41):
                await exchange(ws, {"type": "ping", "id": rid})
        _, samples = await scrape(srv.port)
        buckets = sorted(
            (float(dict(labels)["le"]), v)
            for (name, labels), v in samples.items()
            if name == "fastcomm_routing_latency_seconds_bucket"
        )
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == 10  # 40 messages, 1 in 4 timed


async def test_handshake_rejects_and_slow_consumers_are_exported() -> None:
    async with running(app, allowed_origins=("https://ok.example",)) as srv:
        try:
            async with websockets.connect(srv.url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        except websockets.InvalidStatus as exc:
            assert exc.response.status_code == 403
        srv.node.stats.slow_consumers += 2  # the counter the outbound bound bumps
        _, samples = await scrape(srv.port)
        assert value(samples, "fastcomm_handshake_rejects_total", status="403") == 1
        assert value(samples, "fastcomm_slow_consumers_total") == 2


async def test_servers_do_not_share_metrics() -> None:
    async with running(app) as one, running(app) as two:
        one.node.stats.messages_in += 5
        _, first = await scrape(one.port)
        _, second = await scrape(two.port)
        assert value(first, "fastcomm_messages_received_total") == 5
        assert value(second, "fastcomm_messages_received_total") == 0


async def test_metrics_endpoint_refuses_post() -> None:
    async with running(app) as srv:

        def post() -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{srv.port}/metrics", data=b"x", method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert await asyncio.to_thread(post) in (400, 405)  # picows itself refuses a POST
