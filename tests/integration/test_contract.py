"""The published contract, end to end: the official AsyncAPI parser accepts the
documents, the example app's document matches its snapshot, ``fastcomm schema``
prints every format, and servers serve ``/asyncapi.json`` unless ``docs`` is off."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fastcomm.contract import asyncapi_document
from fastcomm.loader import load_app
from fastcomm.loadgen.target import ChildServer, free_port
from tests.contract_app import app as orders
from tests.integration.conftest import http_get, running
from tests.integration.npm_packages import ROOT, node_script
from tests.integration.test_cli import assert_usage_error, run_cli
from tests.integration.transports import TRANSPORTS, served
from tests.traced import traced

EXAMPLE = str(ROOT / "examples" / "app.py") + ":app"
SNAPSHOT = Path(__file__).parent / "snapshots" / "asyncapi_example.json"


def _parse(document: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    """The parser's diagnostics; asserts it found no error."""
    path = tmp_path / "asyncapi.json"
    path.write_bytes(msgspec.json.encode(document))
    done = node_script("asyncapi_validate.mjs", str(path))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stdout + done.stderr
    return lines


@pytest.mark.parametrize("spec", ["example", "orders"])
def test_the_official_parser_finds_no_error(spec: str, tmp_path: Path) -> None:
    app = load_app(EXAMPLE) if spec == "example" else orders
    lines = _parse(asyncapi_document(app.contract()), tmp_path)
    errors_and_warnings = [line for line in lines if line.get("severity") in (0, 1)]
    assert errors_and_warnings == []
    counts = lines[-1]
    requests, pushes = len(app.handlers) + 7, len(app.pushed) + 4
    assert counts["operations"] == requests + pushes


def test_the_parser_does_report_a_broken_document(tmp_path: Path) -> None:
    document = asyncapi_document(orders.contract())
    document["operations"]["ping"]["reply"]["messages"] = [{"$ref": "#/channels/none"}]
    path = tmp_path / "broken.json"
    path.write_bytes(msgspec.json.encode(document))
    assert node_script("asyncapi_validate.mjs", str(path)).returncode == 1


def _masked(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "x-fastcomm-version": "X"}


def test_the_example_apps_document_matches_its_snapshot() -> None:
    document = json.loads(msgspec.json.encode(asyncapi_document(load_app(EXAMPLE).contract())))
    expected = json.loads(SNAPSHOT.read_text())
    assert _masked(document) == expected, (
        "the contract changed: review the change, then regenerate the snapshot with "
        "tests/integration/test_contract.py's write_snapshot()"
    )


def write_snapshot() -> None:
    """Rewrite the snapshot (``python -c 'from tests.integration.test_contract import
    write_snapshot; write_snapshot()'``)."""
    document = asyncapi_document(load_app(EXAMPLE).contract())
    text = msgspec.json.format(msgspec.json.encode(_masked(document)), indent=2)
    SNAPSHOT.write_bytes(text + b"\n")


@pytest.mark.parametrize("fmt", ["asyncapi", "jsonschema", "typescript"])
def test_the_schema_command_prints_each_format(fmt: str, tmp_path: Path) -> None:
    done = run_cli("schema", EXAMPLE, "--format", fmt, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    if fmt == "typescript":
        assert "export interface Add {" in done.stdout
        return
    document = json.loads(done.stdout)
    expected = load_app(EXAMPLE).contract()
    if fmt == "asyncapi":
        assert document == json.loads(msgspec.json.encode(asyncapi_document(expected)))
        _parse(document, tmp_path)
    else:
        assert {"Add", "AddResult", "Echoed", "ErrorReply", "Welcome"} <= set(document["$defs"])


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((EXAMPLE, "--format", "yaml"), "invalid choice: 'yaml'"),
        ((EXAMPLE,), "the following arguments are required: --format"),
        (("nope:app", "--format", "asyncapi"), "module 'nope' not found"),
        ((EXAMPLE, "--format", "asyncapi", "--frmat"), "unrecognized arguments: --frmat"),
    ],
)
def test_the_schema_command_rejects_bad_input_in_one_line(
    args: tuple[str, ...], phrase: str, tmp_path: Path
) -> None:
    assert_usage_error(run_cli("schema", *args, cwd=tmp_path), phrase)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_servers_serve_the_document_on_every_transport(transport: str) -> None:
    async with served(orders, transport) as server:
        status, body = await http_get(server.port, "/asyncapi.json")
        assert status == 200
        document = json.loads(body)
        assert document["info"]["title"] == "Orders"
        port = document["servers"]["fastcomm"]["variables"]["port"]["default"]
        assert port == str(server.port)  # from the request's Host
        status, page = await http_get(server.port, "/docs")
        assert status == 200 and b"<html" in page


async def test_docs_off_serves_neither() -> None:
    async with running(orders, docs=False) as server:
        assert (await http_get(server.port, "/asyncapi.json"))[0] == 404
        assert (await http_get(server.port, "/docs"))[0] == 404
        assert (await http_get(server.port, "/healthz"))[0] == 200


def test_no_docs_is_a_serve_flag(tmp_path: Path) -> None:
    done = run_cli("serve", "--help", cwd=tmp_path)
    assert "--docs, --no-docs" in done.stdout
    assert "/asyncapi.json and /docs" in " ".join(done.stdout.split())


@pytest.mark.parametrize("transport", ["picows", "granian"])
def test_the_no_docs_flag_of_fastcomm_serve(transport: str) -> None:
    base = [sys.executable, "-m", "fastcomm", "serve", EXAMPLE, "--transport", transport]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")}
    env["PYTHONPATH"] = str(ROOT)
    for flag, status in (("--docs", 200), ("--no-docs", 404)):
        port = free_port()
        command = [*base, flag, "--port", str(port)]
        with ChildServer(
            command, name="fastcomm serve", port=port, env=traced(env), ready="/healthz"
        ):
            for path in ("/asyncapi.json", "/docs"):
                assert _status(f"http://127.0.0.1:{port}{path}") == status, (flag, path)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
