"""What picows logs, as fastcomm passes it on: a client's protocol mistakes go to DEBUG,
with a summary at INFO at most once a minute; anything else keeps its level."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from fastcomm.transports.picows import handshakes
from fastcomm.transports.picows.handshakes import PicowsLog


def test_client_faults_go_to_debug_with_a_summary_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(handshakes, "time", SimpleNamespace(monotonic=lambda: now[0]))
    log = PicowsLog(logging.getLogger("fastcomm.picows-test"))
    with caplog.at_level(logging.DEBUG, logger="fastcomm.picows-test"):
        log.error("WS parser error: invalid opcode")
        now[0] += 30.0
        log.error("Disconnect because HTTP request violated the protocol")
        log.error("the event loop is gone")  # not the client's: stays an error
        now[0] += 31.0  # a minute since the last summary
        log.error("Handshake timeout, closing")
        now[0] += 1.0
        log.error("WS parser error: again")
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("DEBUG", "WS parser error: invalid opcode"),
        ("DEBUG", "Disconnect because HTTP request violated the protocol"),
        ("ERROR", "the event loop is gone"),
        ("INFO", "3 client protocol errors in the last 61 s (details at debug level)"),
        ("DEBUG", "Handshake timeout, closing"),
        ("DEBUG", "WS parser error: again"),
    ]
    assert log.faults == 1  # counting again since the summary
