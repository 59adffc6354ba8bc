"""The browser client's pure logic under node's test runner, and its MessagePack
codec against msgspec."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node") or "/usr/bin/node"


def _node(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not Path(NODE).exists():
        pytest.fail("node is needed for the JavaScript tests: apt-get install -y nodejs")
    return subprocess.run(
        [NODE, *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_node_unit_tests_pass() -> None:
    # A test that hangs fails after 20 s instead of holding the run.
    result = _node("--test", "--test-timeout=20000", "tests/js/")
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("# pass ") and line != "# pass 0" for line in summary), summary
    assert "# fail 0" in summary, summary


VALUES: list[Any] = [
    0,
    -1,
    127,
    128,
    -33,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.25,
    None,
    True,
    False,
    "",
    "héllo €",
    "x" * 300,
    b"\x00\x01\xff",
    b"z" * 70_000,
    [],
    [1, [2, [3, None]]],
    {"type": "message", "channel": "c", "offset": 3, "epoch": "e", "data": {"k": [1.25, "v"]}},
    {f"k{i}": i for i in range(40)},
    list(range(100)),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC),
]


def test_msgpack_codec_round_trips_what_msgspec_encodes() -> None:
    lines = "\n".join(msgspec.msgpack.encode(v).hex() for v in VALUES) + "\n"
    result = _node("tests/js/msgspec_roundtrip.mjs", stdin=lines)
    assert result.returncode == 0, result.stderr
    back = [bytes.fromhex(h) for h in result.stdout.split()]
    assert len(back) == len(VALUES)
    for value, data in zip(VALUES, back, strict=True):
        decoded = msgspec.msgpack.decode(data)
        if isinstance(value, datetime.datetime):
            decoded = msgspec.convert(decoded, datetime.datetime)
        assert decoded == value, value
        if isinstance(value, int | str | bytes | list | dict) and value != {}:
            assert data == msgspec.msgpack.encode(value), value  # the same smallest formats
