"""The README's example app, served by the real CLI in a subprocess."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import websockets

from tests.integration.conftest import ServerProcess


@pytest.mark.slow
async def test_example_app_over_cli(server_process: Callable[..., ServerProcess]) -> None:
    proc = server_process("examples/app.py:app")
    async with websockets.connect(proc.url + "?token=alice") as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send('{"type":"add","id":7,"a":1,"b":2}')
        assert json.loads(await ws.recv()) == {"type": "result", "id": 7, "data": 3}
        await ws.send('{"type":"shout","text":"hi"}')
        assert json.loads(await ws.recv()) == {"type": "echoed", "text": "HI"}
