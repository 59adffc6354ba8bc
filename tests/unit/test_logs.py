"""Structured logging: text and JSON lines, levels, idempotent set-up."""

from __future__ import annotations

import json
import logging

import pytest

from fastcomm.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    loggers = [logging.getLogger(name) for name in ("fastcomm", "picows")]
    saved = [(lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    yield None
    for logger, (level, handlers, propagate) in zip(loggers, saved, strict=True):
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def test_json_lines_carry_level_logger_message_and_extras(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    logging.getLogger("fastcomm.server").info("listening on %s", "x", extra={"port": 1})
    logging.getLogger("fastcomm.server").debug("hidden")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "INFO"
    assert record["logger"] == "fastcomm.server"
    assert record["msg"] == "listening on x"
    assert record["port"] == 1
    assert record["ts"].endswith("Z")


def test_text_format_and_no_duplicate_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "text")
    configure_logging("debug", "text")
    logging.getLogger("fastcomm.router").debug("routed", extra={"kind": "ping"})
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "DEBUG fastcomm.router: routed" in lines[0]
    assert "kind=ping" in lines[0]


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("loud", "text")
    with pytest.raises(ValueError):
        configure_logging("info", "xml")


def test_a_worker_names_itself_on_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text", worker=2)
    logging.getLogger("fastcomm.server").info("listening")
    logging.getLogger("picows.server").warning("odd frame")
    configure_logging("info", "json", worker=2)
    logging.getLogger("fastcomm.server").info("again")
    text, picows, line = capsys.readouterr().err.strip().splitlines()
    assert text.endswith("INFO fastcomm.server: listening worker=2")
    assert picows.endswith("odd frame worker=2")
    assert json.loads(line)["worker"] == 2
    configure_logging("info", "text")  # without a worker: no field
    logging.getLogger("fastcomm.server").info("plain")
    assert "worker" not in capsys.readouterr().err
