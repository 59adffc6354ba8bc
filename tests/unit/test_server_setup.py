"""Mistakes caught while a server is set up: settings that cannot work, handlers and
hooks registered the wrong way; and log lines that carry the exception."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

import fastcomm
from fastcomm.config import build_config
from fastcomm.errors import ConfigError
from fastcomm.logs import configure_logging


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"heartbeat": float("inf")}, "heartbeat must be a finite number, got inf"),
        ({"session_ttl": float("nan")}, "session_ttl must be a finite number, got nan"),
        ({"api_port": 0}, "api_port must be between 1 and 65535, got 0"),
        ({"api_port": 65536}, "api_port must be between 1 and 65535"),
        ({"api_key": "   "}, "api_key must not be empty"),
        ({"frame_rate_limit": 0}, "frame_rate_limit must be a finite number greater than 0"),
        ({"frame_burst": 0}, "frame_burst must be a finite number greater than 0"),
        ({"frame_rate_limit": float("nan")}, "frame_rate_limit must be a finite number"),
        ({"workers": 0}, "workers must be 1 or more, got 0"),
        ({"workers": 4}, "workers = 4 needs a broker shared between processes"),
    ],
)
def test_settings_that_cannot_work_name_the_setting(overrides: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase):
        build_config(overrides, env={})


def test_settings_at_their_limits_are_accepted() -> None:
    config = build_config(
        {"api_port": 65535, "api_key": "k", "frame_rate_limit": 0.5, "workers": 1}, env={}
    )
    assert (config.api_port, config.frame_rate_limit, config.workers) == (65535, 0.5, 1)


class Add(fastcomm.Message, tag="add"):
    a: int


class Numbered(fastcomm.Message, tag=7):
    pass


def test_handlers_and_hooks_registered_the_wrong_way_are_refused() -> None:
    app = fastcomm.App()
    with pytest.raises(TypeError, match=r"takes a fastcomm\.Message subclass"):
        app.on(dict)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="Numbered needs a string tag"):
        app.on(Numbered)
    with pytest.raises(TypeError, match="handler must be callable"):
        app.on(Add)("not a function")  # type: ignore[type-var]
    assert Add not in app.handlers  # nothing half-registered

    async def connect(request: fastcomm.ConnectRequest) -> None:
        return None

    with pytest.raises(TypeError, match="connect hook must be synchronous"):
        app.on_connect(connect)  # type: ignore[arg-type]
    assert app.connect_hook is None


@pytest.fixture
def fresh_logging() -> Any:
    logger = logging.getLogger("fastcomm")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


def failing(name: str) -> None:
    try:
        raise RuntimeError("the cause")
    except RuntimeError:
        logging.getLogger(name).exception("it failed", extra={"session": "s1"})


@pytest.mark.usefixtures("fresh_logging")
def test_text_lines_carry_the_traceback_after_the_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "text")
    failing("fastcomm.server")
    first, *rest = capsys.readouterr().err.strip().splitlines()
    assert first.endswith("ERROR fastcomm.server: it failed session=s1")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: the cause"


@pytest.mark.usefixtures("fresh_logging")
def test_json_lines_carry_the_traceback_in_one_field(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    failing("fastcomm.channels")
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, whatever the traceback
    record = json.loads(line)
    assert (record["msg"], record["session"]) == ("it failed", "s1")
    assert record["exc"].startswith("Traceback (most recent call last):")
    assert record["exc"].endswith("RuntimeError: the cause")
