"""OriginCheck on its own: what counts as the same host, and the bounded warnings
(an injected clock instead of waiting a minute)."""

from __future__ import annotations

import logging

import pytest

from fastcomm.node.origins import OriginCheck


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def check(origin: str | None, host: str | None = "app.example:8000") -> str | None:
    headers = {} if origin is None else {"Origin": origin}
    if host is not None:
        headers["Host"] = host
    return OriginCheck(()).refusal(headers)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (None, None),
        ("http://app.example:8000", "app.example:8000"),
        ("wss://app.example:8000", " APP.example:8000 "),
        ("http://app.example:08000", "app.example:8000"),
        ("http://app.example", "app.example:80"),
        ("https://app.example:80", "app.example"),
        ("http://[::1]", "[::1]:443"),
        ("http://app.example:", "app.example"),
    ],
)
def test_the_same_host_passes(origin: str | None, host: str | None) -> None:
    assert check(origin, host) is None


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://app.example:8000", None),  # no Host to compare with
        ("http://app.example:8000", "app.example:8000/x"),
        ("http://app.example:8000", "user@app.example:8000"),
        ("http://app.example:8000", "[::1"),
        ("http://app.example:8000", "app.example:99999"),
        ("http://app.example:8000", "app.example:\uff18\uff10\uff10\uff10"),  # digits, not ASCII
        ("http://user@app.example:8000", "app.example:8000"),
        ("app.example:8000", "app.example:8000"),  # no scheme
        ("ht tp://app.example:8000", "app.example:8000"),
        ("http://[]", "[]"),
        ("http://[::1]x", "[::1]"),
        ("http://[app.example]", "[app.example]"),
        ("http://:8000", ":8000"),
    ],
)
def test_anything_else_is_refused(origin: str, host: str | None) -> None:
    assert check(origin, host) == (
        "origin not allowed: the page is not on this server's host; "
        "allow it with --allowed-origin ORIGIN (* allows any)"
    )


def test_a_refused_origin_is_warned_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    origins = OriginCheck((), clock=clock)
    headers = {"Origin": "https://evil.example", "Host": "app.example"}
    with caplog.at_level(logging.WARNING, logger="fastcomm.server"):
        for seconds in (0, 30, 59.9, 60, 61, 119.9, 120):
            clock.now = 1000 + seconds
            assert origins.refusal(headers) is not None
    assert len(caplog.records) == 3  # at 0, 60 and 120
    assert "'https://evil.example' to host 'app.example'" in caplog.records[0].getMessage()


def test_the_remembered_origins_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    origins = OriginCheck((), clock=clock, remember=2)

    def refuse(origin: str) -> None:
        assert origins.refusal({"Origin": origin, "Host": "app.example"}) is not None

    with caplog.at_level(logging.WARNING, logger="fastcomm.server"):
        for origin in ("https://a.example", "https://b.example", "https://c.example"):
            refuse(origin)
        clock.now += 30
        refuse("https://d.example")
        refuse("https://a.example")  # still remembered: not warned again
        assert origins.remembered == 2 and origins.unlogged == 2
        clock.now += 30  # a and b are forgotten
        refuse("https://e.example")
        refuse("https://x" + "y" * 1000 + ".example")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4
    assert "'https://e.example'" in messages[2] and messages[2].endswith(
        "(2 other refusals not logged)"
    )
    assert not messages[3].endswith("not logged)")
    assert f"'https://x{'y' * 247}' to host" in messages[3]  # 256 characters of it
    assert origins.remembered == 2


def test_allowed_origins_as_written_or_any() -> None:
    listed = OriginCheck(["https://App.Example/", "http://b.example:80", "null"])
    for origin in ("https://app.example", "https://app.example:443", "http://b.example", "null"):
        assert listed.refusal({"Origin": origin, "Host": "elsewhere"}) is None, origin
    for origin in ("http://app.example", "https://app.example:8443", "https://b.example"):
        reason = listed.refusal({"Origin": origin, "Host": origin.partition("://")[2]})
        assert reason is not None and reason.startswith("origin not allowed: it is not in")
    anything = OriginCheck(["https://a.example", "*"])
    assert anything.refusal({"Origin": "null"}) is None
