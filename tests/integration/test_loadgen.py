"""``fastcomm bench`` (the load generator) against real servers, in small runs.

Each run is a subprocess, ``python -m fastcomm.loadgen``, the same entry point
``fastcomm bench`` wires; exit codes: 0 passed, 1 threshold breached, 2 usage
error, 3 could not run or measured nothing (whatever ``--fail-if`` says).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fastcomm.errors import ConfigError
from fastcomm.loadgen.histogram import Histogram
from fastcomm.loadgen.thresholds import check, parse_threshold
from tests.integration.conftest import ServerProcess
from tests.traced import traced

ROOT = Path(__file__).resolve().parents[2]
QUICK = ("--duration", "1", "--warmup", "0.2")


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "fastcomm", "bench", *args],
        cwd=ROOT,
        env=traced(environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def metrics_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)["metrics"]
    return result


def test_rpc_reports_throughput_and_sane_percentiles() -> None:
    m = metrics_of(bench("--scenario", "rpc", "--conns", "4", *QUICK, "--json"))
    assert m["conns"] == 4 and m["failed_conns"] == 0
    assert m["throughput"] > 0 and m["requests"] > 0
    assert m["errors"] == 0 and m["unanswered"] == 0
    assert 0 < m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"] <= m["p999_ms"] <= m["max_ms"]
    assert m["p50_ms"] < 1000
    # The started server is local, so its CPU time is known.
    assert m["server_cpu_us_per_req"] > 0


def test_rpc_echo_msgpack_over_two_processes() -> None:
    done = bench(
        "--conns", "4", "--processes", "2", "--encoding", "msgpack", "--size", "200",
        "--message", '{"type":"echo"}', *QUICK, "--json",
    )  # fmt: skip
    m = metrics_of(done)
    assert m["conns"] == 4 and m["errors"] == 0 and m["throughput"] > 0
    # The report gives the size of what was sent: the template, its id and the data string.
    sent = msgspec.msgpack.encode({"type": "echo", "id": 1, "data": "x" * 200})
    config = json.loads(done.stdout)["config"]
    assert (config["size"], config["message_bytes"]) == (200, len(sent))


def test_a_message_with_its_own_data_is_reported_at_its_size() -> None:
    message = '{"type":"echo","data":"hello"}'
    done = bench("--conns", "1", "--message", message, *QUICK, "--json")
    config = json.loads(done.stdout)["config"]
    sent = msgspec.json.encode({"type": "echo", "id": 1, "data": "hello"})
    assert (done.returncode, config["size"], config["message_bytes"]) == (0, None, len(sent))
    table = bench("--conns", "1", "--message", message, *QUICK)
    header = table.stdout.splitlines()[0]
    assert f"  message_bytes={len(sent)}" in header and "size=" not in header


def test_bench_help_shows_every_default() -> None:
    done = bench("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for default in (
        "default rpc 10s, fanout 10s, idle 5s; connect has none",  # --duration
        "unmeasured time first (default 1s)",  # --warmup
        "handshake timeout (default 10s)",
        "load-generator processes (default 1)",
        "fastcomm.v1.msgpack (default: json)",  # --encoding
        "auto: channel, or app when the server answers unknown_type (default: auto)",
    ):
        assert default in text


def test_human_table_names_every_metric() -> None:
    done = bench("--conns", "2", *QUICK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fastcomm bench  scenario=rpc")
    for name in ("throughput", "p50_ms", "p99_ms", "errors"):
        assert f"  {name} " in done.stdout


def test_breached_threshold_exits_1_and_names_it() -> None:
    done = bench("--conns", "2", *QUICK, "--fail-if", "p99_ms>=0", "--fail-if", "errors>0")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "threshold breached: p99_ms>=0 (measured" in lines[0]
    assert "<< FAIL" in done.stdout


def test_every_breach_is_named() -> None:
    done = bench("--conns", "2", *QUICK, "--fail-if", "p50_ms>=0", "--fail-if", "throughput<1e12")
    assert done.returncode == 1
    assert "p50_ms>=0" in done.stderr and "throughput<1e+12" in done.stderr


def test_passing_thresholds_exit_0() -> None:
    done = bench("--conns", "2", *QUICK, "--fail-if", "throughput < 1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["passed"] is True


@pytest.mark.parametrize(
    "expression",
    ["p99_ms>>10", "p99_ms", "nonsense>1", "p99_ms>ten", "", "throughput<50x"],
)
def test_bad_threshold_is_a_one_line_usage_error(expression: str) -> None:
    done = bench("--conns", "1", *QUICK, "--fail-if", expression)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastcomm: error: bad --fail-if")
    assert done.stdout == ""


def test_bad_option_is_a_one_line_usage_error() -> None:
    for args in (
        ("--conns", "0"), ("--url", "http://x"), ("--message", "[1]"), ("--header", "nocolon"),
        ("--header", "Bad Name: x"), ("--header", "Upgrade: h2c"), ("--token", ""),
        ("--token", "t", "--header", "Authorization: Basic x"),
    ):  # fmt: skip
        done = bench(*args)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1


def test_durations_take_units() -> None:
    done = bench("--conns", "1", "--duration", "1s", "--warmup", "200ms", "--json")
    config = json.loads(done.stdout)["config"]
    assert (done.returncode, config["duration"], config["warmup"]) == (0, 1.0, 0.2), done.stderr
    bad = bench("--duration", "10x")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        "fastcomm: error: argument --duration: must be a duration in seconds such as 30 or "
        "2.5, or with a unit: 500ms, 10s, 5m, 1h; got '10x'\n"
    )


def test_unreachable_server_cannot_run() -> None:
    done = bench("--url", "ws://127.0.0.1:1/ws", "--conns", "2", *QUICK, "--timeout", "2")
    assert done.returncode == 3
    assert done.stderr.startswith("fastcomm: error: nothing to measure")


def test_app_that_cannot_start_is_reported_with_its_last_line() -> None:
    done = bench("--app", "nope_module:app", "--conns", "2", *QUICK)
    assert done.returncode == 3
    assert done.stderr.startswith("fastcomm: error: the server under test exited with status 2: ")
    assert "module 'nope_module' not found" in done.stderr


def test_open_loop_rate_against_a_url(server_process: Callable[..., ServerProcess]) -> None:
    # A stock server keeps its 200 msg/s per-connection limit: stay well below it.
    server = server_process()
    done = bench("--url", server.url, "--conns", "2", "--rate", "100", *QUICK, "--json")
    m = metrics_of(done)
    assert m["errors"] == 0 and 60 <= m["requests"] <= 140
    assert "server_cpu_us_per_req" not in m  # no --server-pid: not probed


# -- runs that measured nothing: exit 3 whatever --fail-if says -------------------------
APPS = """
import fastcomm

app = fastcomm.App()
secured = fastcomm.App()
_counts: dict[int, int] = {}


class Kick(fastcomm.Message, tag="kick"):
    pass


class KickOne(fastcomm.Message, tag="kick_one"):
    pass


@app.on(Kick)
def kick(msg, conn):  # every connection is closed at its first request
    conn.close(1008, "go away")


@app.on(KickOne)
def kick_one(msg, conn):  # the connection whose requests carry id 1, at its 20th request
    n = _counts[id(conn)] = _counts.get(id(conn), 0) + 1
    if msg.id == 1 and n == 20:
        conn.close(1008, "only you")
    return n


@secured.on_connect
def check(request):
    if request.token != "s3cret":
        raise fastcomm.Rejected(401, "bad token")
    if request.headers.get("x-tenant") != "acme":
        raise fastcomm.Rejected(403, "wrong tenant")
"""


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("apps") / "bench_apps.py"
    path.write_text(APPS)
    return str(path)


def cannot_run(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """Assert exit 3 with one stderr line naming every word; return the line."""
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastcomm: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_rate_limited_server_is_exit_3_not_a_pass(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()  # the stock 200 msg/s limit: a closed loop trips 4029
    done = bench("--url", server.url, "--conns", "2", *QUICK, "--json", "--fail-if", "errors>0")
    cannot_run(done, "closed every connection", "4029")
    report = json.loads(done.stdout)
    assert report["close_codes"] == {"4029": 2} and report["passed"] is False
    assert report["metrics"]["closed_4029"] == 2 and "4029" in report["error"]


def test_server_closing_every_connection_is_exit_3(apps: str) -> None:
    done = bench(
        "--app", f"{apps}:app", "--message", '{"type":"kick"}', "--conns", "4",
        "--processes", "2", *QUICK, "--fail-if", "errors>0",
    )  # fmt: skip
    cannot_run(done, "closed every connection", "1008 policy violation x4")
    assert "closed_1008" in done.stdout and "NOT MEASURED" in done.stdout


def test_server_closing_some_connections(apps: str) -> None:
    common = ("--app", f"{apps}:app", "--message", '{"type":"kick_one"}', "--conns", "4", *QUICK)
    cannot_run(bench(*common), "closed 1 of 4 connections", "1008", "--allow-server-close")
    allowed = bench(*common, "--allow-server-close", "--json", "--fail-if", "closed_4029>0")
    m = metrics_of(allowed)
    assert allowed.returncode == 0, allowed.stderr
    assert m["closed_by_server"] == 1 and m["closed_1008"] == 1 and m["requests"] > 0
    assert json.loads(allowed.stdout)["close_codes"] == {"1008": 1}
    for gate in ("closed_by_server>0", "closed_1008>=1"):
        gated = bench(*common, "--allow-server-close", "--fail-if", gate)
        assert gated.returncode == 1, gated.stderr
        assert f"threshold breached: {gate}" in gated.stderr


def test_token_and_headers_reach_the_connect_hook(apps: str) -> None:
    common = ("--app", f"{apps}:secured", "--conns", "2", *QUICK)
    cannot_run(bench(*common), "refused the WebSocket upgrade", "HTTP 401 x2")
    cannot_run(bench(*common, "--token", "wrong", "--header", "X-Tenant: acme"), "HTTP 401")
    cannot_run(bench(*common, "--token", "s3cret"), "HTTP 403")
    done = bench(*common, "--token", "s3cret", "--header", "X-Tenant: acme", "--json")
    assert done.returncode == 0, done.stderr
    assert metrics_of(done)["requests"] > 0
    storm = bench(*common[:2], "--scenario", "connect", "--conns", "20", "--token", "s3cret")
    cannot_run(storm, "HTTP 403 x20")


def test_connect_storm() -> None:
    m = metrics_of(bench("--scenario", "connect", "--conns", "100", "--json"))
    assert m["conns"] == 100 and m["failed_conns"] == 0
    assert 0 < m["p50_ms"] <= m["p99_ms"]


def test_paced_connect_storm_over_two_processes_shows_progress() -> None:
    # 40 connections at 100/s take at least 0.39 s: the pace is kept, not a burst.
    done = bench(
        "--scenario", "connect", "--conns", "40", "--rate", "100", "--processes", "2",
        "--json", "--progress",
    )  # fmt: skip
    m = metrics_of(done)
    assert m["conns"] == 40 and m["failed_conns"] == 0
    assert m["seconds"] >= 0.38 and m["connect_rate"] <= 110
    # --progress draws one line rewritten in place on stderr (\r reads as a newline
    # here: text mode), erased at the end.
    assert "\x1b[Kfastcomm bench connect" in done.stderr
    assert done.stderr.endswith("\x1b[K")


@pytest.mark.parametrize(("mode", "processes"), [("channel", "1"), ("channel", "2"), ("app", "1")])
def test_fanout_delivers_every_publication(mode: str, processes: str) -> None:
    done = bench(
        "--scenario", "fanout", "--conns", "20", "--rate", "20", *QUICK, "--json",
        "--fanout-mode", mode, "--processes", processes, "--fail-if", "lost>0",
    )  # fmt: skip
    m = metrics_of(done)
    assert done.returncode == 0, done.stderr
    assert m["subscribers"] == 20 and m["publications"] >= 15
    assert m["deliveries"] == m["publications"] * 20
    assert m["p99_ms"] > 0


def test_idle_reports_memory_per_connection() -> None:
    m = metrics_of(bench("--scenario", "idle", "--conns", "50", "--duration", "0.5", "--json"))
    assert m["conns"] == 50 and m["dropped"] == 0
    assert m["server_rss_kib"] > 0 and "rss_per_conn_kib" in m


# -- the pieces, without processes ----------------------------------------------------
def test_threshold_parsing() -> None:
    names = ("p99_ms", "throughput")
    assert parse_threshold(" p99_ms > 10 ", names).text == "p99_ms>10"
    assert parse_threshold("throughput<50k", names).value == 50_000
    assert parse_threshold("throughput<=1_000_000", names).value == 1e6
    assert parse_threshold("throughput!=2.5M", names).value == 2.5e6
    with pytest.raises(ConfigError, match="unknown metric 'p98_ms'"):
        parse_threshold("p98_ms>1", names)
    breaches = check([parse_threshold("p99_ms>10", names)], {"p99_ms": 12.0})
    assert [b.describe() for b in breaches] == ["p99_ms>10 (measured 12)"]
    missing = check([parse_threshold("throughput<1", names)], {})
    assert missing and "not measured" in missing[0].describe()


def test_histogram_percentiles_and_merge() -> None:
    low, high = Histogram(), Histogram()
    for value in range(1, 1001):
        (low if value <= 500 else high).record(value * 1000)
    merged = Histogram.from_wire(low.to_wire())
    merged.merge(high)
    assert merged.count == 1000 and merged.min == 1000 and merged.max == 1_000_000
    assert abs(merged.percentile(50) - 500_000) / 500_000 < 0.02
    assert abs(merged.percentile(99) - 990_000) / 990_000 < 0.02
    assert merged.percentile(100) == 1_000_000
