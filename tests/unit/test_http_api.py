"""HttpApi.handle as data in / data out, on a real MemoryBroker-based backend."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from fastcomm.errors import ConfigError
from fastcomm.http.api import HttpApi
from fastcomm.http.types import Request
from tests.unit.test_http_api_backend import MemoryBackend

KEY = "s3cret-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(history_size=5)


@pytest.fixture
def api(backend: MemoryBackend) -> HttpApi:
    return HttpApi(backend, api_key=KEY, max_body=4096)


async def call(
    api: HttpApi,
    command: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps({} if body is None else body).encode()
    request = Request(method, f"/api/{command}", "", AUTH if headers is None else headers, data)
    response = await api.handle(request)
    assert response.content_type == "application/json"
    return response.status, json.loads(response.body)


async def ok(api: HttpApi, command: str, body: Any = None) -> Any:
    status, reply = await call(api, command, body)
    assert status == 200, reply
    assert list(reply) == ["result"]
    return reply["result"]


def error_of(reply: dict[str, Any]) -> tuple[int, str]:
    assert list(reply) == ["error"]
    return reply["error"]["code"], reply["error"]["message"]


# -- construction and auth ---------------------------------------------------
def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ConfigError):
        HttpApi(MemoryBackend(), api_key="", max_body=10)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": KEY},
        {"x-api-key": KEY},
        {"Authorization": f"apikey {KEY}"},
        {"authorization": f"ApiKey  {KEY}"},
        {"X-API-Key": "", "Authorization": f"apikey {KEY}"},  # an empty X-API-Key is absent
    ],
)
async def test_both_header_forms_are_accepted(api: HttpApi, headers: dict[str, str]) -> None:
    status, reply = await call(api, "publish", {"channel": "a", "data": 1}, headers=headers)
    assert status == 200 and reply["result"]["offset"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": KEY + "x"},
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": "apikey"},
        {"X-API-Key": ""},
    ],
)
async def test_a_wrong_or_missing_key_is_401(
    api: HttpApi, backend: MemoryBackend, headers: dict[str, str]
) -> None:
    request = Request("POST", "/api/publish", "", headers, b'{"channel":"a","data":1}')
    response = await api.handle(request)
    assert response.status == 401
    assert error_of(json.loads(response.body)) == (101, "unauthorized")
    assert KEY.encode() not in response.body
    assert (await backend.broker.position("a")).offset == 0  # nothing was published


async def test_a_wrong_key_is_checked_before_anything_else_of_the_request(api: HttpApi) -> None:
    status, reply = await call(api, "nope", raw=b"{", headers={"X-API-Key": "bad"})
    assert status == 401 and error_of(reply)[0] == 101


# -- commands ----------------------------------------------------------------
async def test_publish_returns_offset_and_epoch_and_is_in_history(api: HttpApi) -> None:
    first = await ok(api, "publish", {"channel": "chat:1", "data": {"text": "hi"}})
    second = await ok(api, "publish", {"channel": "chat:1", "data": [1, 2]})
    assert set(first) == {"offset", "epoch"}
    assert (first["offset"], second["offset"]) == (1, 2) and first["epoch"] == second["epoch"]
    history = await ok(api, "history", {"channel": "chat:1", "limit": 10})
    assert history == {
        "publications": [{"data": {"text": "hi"}, "offset": 1}, {"data": [1, 2], "offset": 2}],
        "offset": 2,
        "epoch": first["epoch"],
    }


async def test_publish_ignores_unknown_centrifugo_options(api: HttpApi) -> None:
    body = {"channel": "a", "data": 1, "skip_history": False, "tags": {"k": "v"}}
    assert (await ok(api, "publish", body))["offset"] == 1


async def test_publish_with_an_idempotency_key_publishes_once(api: HttpApi) -> None:
    body = {"channel": "a", "data": 1, "idempotency_key": "order-17"}
    first, retry = await ok(api, "publish", body), await ok(api, "publish", body)
    assert first == retry and first["offset"] == 1
    assert (await ok(api, "publish", {"channel": "a", "data": 2}))["offset"] == 2
    status, reply = await call(api, "publish", {**body, "idempotency_key": "x" * 129})
    assert status == 400 and error_of(reply)[0] == 107


async def test_broadcast_answers_one_response_per_channel_in_order(api: HttpApi) -> None:
    await ok(api, "publish", {"channel": "b", "data": 0})
    result = await ok(api, "broadcast", {"channels": ["a", "b", "a"], "data": "x"})
    offsets = [r["result"]["offset"] for r in result["responses"]]
    assert offsets == [1, 2, 2]
    assert all(set(r) == {"result"} for r in result["responses"])


async def test_broadcast_reports_a_failing_channel_and_publishes_the_others(
    api: HttpApi, backend: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.failing.add("down")
    result = await ok(api, "broadcast", {"channels": ["a", "down", "b"], "data": 1})
    first, failed, last = result["responses"]
    assert first == {"result": {"offset": 1, "epoch": first["result"]["epoch"]}}
    assert failed == {"error": {"code": 100, "message": "down: internal server error"}}
    assert last["result"]["offset"] == 1
    assert "broadcast to 'down' failed" in caplog.text


async def test_presence_lists_sessions_with_user_and_meta(
    api: HttpApi, backend: MemoryBackend
) -> None:
    await backend.join("s1", "alice", "room", {"role": "admin"})
    await backend.join("s2", None, "room")
    result = await ok(api, "presence", {"channel": "room"})
    assert result == {
        "presence": {
            "s1": {"client": "s1", "user": "alice", "conn_info": {"role": "admin"}},
            "s2": {"client": "s2", "user": ""},
        }
    }
    assert await ok(api, "presence", {"channel": "empty"}) == {"presence": {}}


async def test_presence_stats_counts_sessions_and_distinct_users(
    api: HttpApi, backend: MemoryBackend
) -> None:
    for session, user in [("s1", "alice"), ("s2", "alice"), ("s3", "bob"), ("s4", None)]:
        await backend.join(session, user, "room")
    assert await ok(api, "presence_stats", {"channel": "room"}) == {
        "num_clients": 4,
        "num_users": 2,
    }


async def publish_n(api: HttpApi, channel: str, n: int) -> str:
    epoch = ""
    for i in range(n):
        epoch = (await ok(api, "publish", {"channel": channel, "data": i}))["epoch"]
    return epoch


def offsets(result: dict[str, Any]) -> list[int]:
    return [p["offset"] for p in result["publications"]]


async def test_history_limits_follow_centrifugo(api: HttpApi) -> None:
    epoch = await publish_n(api, "h", 4)
    position_only = await ok(api, "history", {"channel": "h"})
    assert position_only == {"publications": [], "offset": 4, "epoch": epoch}
    assert offsets(await ok(api, "history", {"channel": "h", "limit": 0})) == []
    assert offsets(await ok(api, "history", {"channel": "h", "limit": 2})) == [3, 4]
    assert offsets(await ok(api, "history", {"channel": "h", "limit": -1})) == [1, 2, 3, 4]
    reverse = {"channel": "h", "limit": 3, "reverse": True}
    assert offsets(await ok(api, "history", reverse)) == [4, 3, 2]


async def test_history_since_returns_what_follows_the_position(api: HttpApi) -> None:
    epoch = await publish_n(api, "h", 4)
    since = {"offset": 1, "epoch": epoch}
    after = await ok(api, "history", {"channel": "h", "limit": -1, "since": since})
    assert offsets(after) == [2, 3, 4]
    first = await ok(api, "history", {"channel": "h", "limit": 1, "since": since})
    assert offsets(first) == [2]
    top = {"offset": 4, "epoch": epoch}
    assert offsets(await ok(api, "history", {"channel": "h", "limit": 5, "since": top})) == []


@pytest.mark.parametrize(
    "since",
    [
        {"offset": 1, "epoch": "another-epoch"},  # the stream restarted
        {"offset": 9, "epoch": None},  # ahead of the stream (epoch filled in below)
        {"offset": 0, "epoch": None},  # offsets 1..2 were trimmed (history_size 5, 7 published)
    ],
)
async def test_history_since_an_unrecoverable_position_is_416_code_112(
    api: HttpApi, since: dict[str, Any]
) -> None:
    epoch = await publish_n(api, "h", 7)
    since = {**since, "epoch": since["epoch"] or epoch}
    status, reply = await call(api, "history", {"channel": "h", "limit": 10, "since": since})
    assert status == 416
    code, message = error_of(reply)
    assert code == 112 and f"stream at 7/{epoch}" in message


async def test_history_reverse_with_since_is_refused(api: HttpApi) -> None:
    body = {"channel": "h", "limit": 1, "reverse": True, "since": {"offset": 0, "epoch": "e"}}
    status, reply = await call(api, "history", body)
    assert status == 400 and error_of(reply)[0] == 107


async def test_disconnect_by_user_closes_every_session_with_default_4003(
    api: HttpApi, backend: MemoryBackend
) -> None:
    for session, user in [("s1", "alice"), ("s2", "alice"), ("s3", "bob")]:
        await backend.join(session, user, "room")
    assert await ok(api, "disconnect", {"user": "alice"}) == {"disconnected": 2}
    assert sorted(backend.closed) == [("s1", 4003, ""), ("s2", 4003, "")]
    assert list((await ok(api, "presence", {"channel": "room"}))["presence"]) == ["s3"]


@pytest.mark.parametrize("field", ["session", "client"])
async def test_disconnect_one_session_with_code_and_reason(
    api: HttpApi, backend: MemoryBackend, field: str
) -> None:
    await backend.join("s1", "alice", "room")
    await backend.join("s2", "alice", "room")
    body = {field: "s2", "disconnect": {"code": 4000, "reason": "bye"}}
    assert await ok(api, "disconnect", body) == {"disconnected": 1}
    assert backend.closed == [("s2", 4000, "bye")]
    assert await ok(api, "disconnect", {"user": "bob", "session": "s1"}) == {"disconnected": 0}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"disconnect": {"code": 4000}},
        {"user": "a", "disconnect": {"code": 2000}},
        {"user": "a", "disconnect": {"code": 5000}},
        {"user": "a", "disconnect": {"code": 999}},
        {"user": "a", "disconnect": {"reason": "é" * 62}},
        {"session": "s1", "client": "s2"},
        {"user": ""},
    ],
)
async def test_disconnect_bad_requests_are_400(api: HttpApi, body: dict[str, Any]) -> None:
    status, reply = await call(api, "disconnect", body)
    assert status == 400 and error_of(reply)[0] == 107


async def test_unsubscribe_counts_the_users_subscriptions(
    api: HttpApi, backend: MemoryBackend
) -> None:
    await backend.join("s1", "alice", "room")
    await backend.join("s2", "alice", "room")
    await backend.join("s3", "bob", "room")
    assert await ok(api, "unsubscribe", {"user": "alice", "channel": "room"}) == {"unsubscribed": 2}
    assert await ok(api, "channels") == {"channels": {"room": {"num_clients": 1}}}


async def test_channels_with_and_without_pattern(api: HttpApi, backend: MemoryBackend) -> None:
    await backend.join("s1", "alice", "chat:1")
    await backend.join("s2", "bob", "chat:1")
    await backend.join("s2", "bob", "news")
    everything = await ok(api, "channels", {})
    assert everything == {"channels": {"chat:1": {"num_clients": 2}, "news": {"num_clients": 1}}}
    assert await ok(api, "channels", {"pattern": "chat:*"}) == {
        "channels": {"chat:1": {"num_clients": 2}}
    }


async def test_info_lists_this_node(api: HttpApi, backend: MemoryBackend) -> None:
    await backend.join("s1", "alice", "room")
    result = await ok(api, "info")
    assert [node["uid"] for node in result["nodes"]] == ["node-1"]
    assert result["nodes"][0]["num_clients"] == 1


async def test_an_empty_body_counts_as_an_empty_object(api: HttpApi) -> None:
    status, reply = await call(api, "info", raw=b"")
    assert status == 200 and "nodes" in reply["result"]


# -- errors ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "raw", "expected"),
    [
        ("publish", b'{"channel": "a", "data": ', "invalid JSON"),
        ("publish", b"\xff\xfe", "invalid JSON"),
        ("publish", b"[1, 2]", "Expected `object`, got `array`"),
        ("publish", b'{"data": 1}', "missing required field `channel`"),
        ("publish", b'{"channel": "a"}', "missing required field `data`"),
        ("publish", b'{"channel": 5, "data": 1}', "Expected `str`, got `int` - at `$.channel`"),
        ("history", b'{"channel": "a", "limit": -2}', "at `$.limit`"),
        ("history", b'{"channel": "a", "since": {"offset": 1}}', "`epoch` - at `$.since`"),
        ("broadcast", b'{"channels": [], "data": 1}', "at `$.channels`"),
        ("unsubscribe", b'{"user": "a"}', "missing required field `channel`"),
    ],
)
async def test_malformed_requests_are_400_naming_the_problem(
    api: HttpApi, command: str, raw: bytes, expected: str
) -> None:
    status, reply = await call(api, command, raw=raw)
    assert status == 400
    code, message = error_of(reply)
    assert code == 107 and expected in message


@pytest.mark.parametrize(
    ("command", "body", "path", "problem"),
    [
        ("publish", {"channel": "a b", "data": 1}, "$.channel", "characters outside"),
        ("publish", {"channel": "", "data": 1}, "$.channel", "length >= 1"),
        ("publish", {"channel": "x" * 256, "data": 1}, "$.channel", "longer than 255"),
        ("presence", {"channel": "*"}, "$.channel", "characters outside"),
        ("history", {"channel": "é"}, "$.channel", "characters outside"),
        ("broadcast", {"channels": ["ok", "no?"], "data": 1}, "$.channels[1]", "outside"),
        ("broadcast", {"channels": ["ok", "y" * 300], "data": 1}, "$.channels[1]", "longer"),
        ("unsubscribe", {"user": "u", "channel": "a\nb"}, "$.channel", "outside"),
    ],
)
async def test_invalid_channel_names_are_400_naming_the_field(
    api: HttpApi, backend: MemoryBackend, command: str, body: Any, path: str, problem: str
) -> None:
    status, reply = await call(api, command, body)
    assert status == 400
    code, message = error_of(reply)
    assert code == 107 and f"`{path}`" in message and problem in message
    assert (await backend.broker.position("ok")).offset == 0  # a broadcast publishes nothing


async def test_unknown_command_is_400_code_104(api: HttpApi) -> None:
    status, reply = await call(api, "publsh", {"channel": "a", "data": 1})
    assert status == 400 and error_of(reply) == (104, "unknown command 'publsh'")


async def test_an_oversized_body_is_413_code_106(api: HttpApi, backend: MemoryBackend) -> None:
    body = {"channel": "a", "data": "x" * 4096}
    status, reply = await call(api, "publish", body)
    assert status == 413 and error_of(reply) == (106, "request body is larger than 4096 bytes")
    assert (await backend.broker.position("a")).offset == 0
    exact = json.dumps({"channel": "a", "data": ""}).encode()
    exact = exact.replace(b'""', b'"' + b"x" * (4096 - len(exact)) + b'"')
    assert len(exact) == 4096
    assert (await call(api, "publish", raw=exact))[0] == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_405(api: HttpApi, method: str) -> None:
    response = await api.handle(Request(method, "/api/publish", "", AUTH, b""))
    assert response.status == 405 and ("Allow", "POST") in response.headers
    assert json.loads(response.body)["error"]["code"] == 107


async def test_paths_outside_api_are_404(api: HttpApi) -> None:
    response = await api.handle(Request("POST", "/publish", "", AUTH, b"{}"))
    assert response.status == 404


async def test_a_backend_failure_is_500_without_detail_and_logged(
    api: HttpApi, backend: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.failing.add("down")
    with caplog.at_level(logging.ERROR, "fastcomm.http.api"):
        status, reply = await call(api, "publish", {"channel": "down", "data": 1})
    assert status == 500
    code, message = error_of(reply)
    assert code == 100 and "backend down" not in message
    correlation = message.rsplit("=", 1)[1].rstrip(")")
    assert f"correlation_id={correlation}" in caplog.text and "backend down" in caplog.text
    assert KEY not in caplog.text


async def test_openapi_document_is_served_without_key(api: HttpApi) -> None:
    response = await api.handle(Request("GET", "/api/openapi.json", "", {}, b""))
    assert response.status == 200 and response.content_type == "application/json"
    assert json.loads(response.body)["openapi"] == "3.1.0"
    post = await api.handle(Request("POST", "/api/openapi.json", "", AUTH, b""))
    assert post.status == 405 and ("Allow", "GET") in post.headers
