"""docs/CONTRACT.md's code and commands, run as written (blocks found and run as
tests/integration/docblocks.py says: only ports change); the shell redirections
``> FILE`` of its commands are done here, as a shell would."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from fastcomm.loadgen.target import ChildServer, free_port
from tests.integration.docblocks import DOCS, ENV, ROOT, block, commands, save
from tests.integration.npm_packages import node_script, tsc
from tests.integration.test_contract_typescript import FLAGS

CONTRACT = DOCS / "CONTRACT.md"


def run(argv: list[str], where: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` in ``where``; a trailing ``> FILE`` writes its stdout to FILE."""
    target = None
    if len(argv) > 2 and argv[-2] == ">":
        argv, target = argv[:-2], argv[-1]
    done = subprocess.run(
        argv, cwd=where, env=ENV, capture_output=True, text=True, timeout=60, check=False
    )
    if target is not None:
        (where / target).write_text(done.stdout)
    return done


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    assert save(block("contract-app", CONTRACT), tmp_path) == "myapp.py"
    for argv in commands(block("contract-schema", CONTRACT), {}):
        done = run(argv, tmp_path)
        assert done.returncode == 0, done.stderr
    return tmp_path


def test_the_three_formats_are_written(app_dir: Path) -> None:
    document = json.loads((app_dir / "asyncapi.json").read_text())
    assert document["info"]["title"] == "Calculator"
    assert set(document["operations"]) >= {"add", "push_added", "ping", "push_welcome"}
    schemas = document["components"]["schemas"]
    assert "too_big" in schemas["ErrorReply"]["properties"]["code"]["enum"]
    assert schemas["Add"]["properties"]["a"] == {"examples": [1], "type": "integer", "minimum": 0}
    done = node_script("asyncapi_validate.mjs", str(app_dir / "asyncapi.json"))
    assert done.returncode == 0, done.stdout
    messages = json.loads((app_dir / "messages.json").read_text())
    assert {"Add", "Added", "AddResult"} <= set(messages["$defs"])
    assert "export interface Added {" in (app_dir / "myapp.d.ts").read_text()


def test_the_typed_client_compiles_and_a_mistyped_call_does_not(app_dir: Path) -> None:
    shutil.copy(ROOT / "fastcomm" / "web" / "fastcomm.d.ts", app_dir / "fastcomm.d.ts")
    code = block("contract-ts", CONTRACT)
    assert code.startswith("// client.ts\n")
    (app_dir / "client.ts").write_text(code)
    done = tsc(*FLAGS, "client.ts", cwd=app_dir)
    assert done.returncode == 0, done.stdout
    bad = code.replace("// client.call(", "client.call(")
    assert bad != code
    (app_dir / "client.ts").write_text(bad)
    done = tsc(*FLAGS, "client.ts", cwd=app_dir)
    assert done.returncode != 0 and "client.ts(8," in done.stdout, done.stdout


def test_the_served_document_is_the_generated_one(app_dir: Path) -> None:
    port = free_port()
    serve, curl = commands(block("contract-serve", CONTRACT), {"8000": str(port)})
    with ChildServer(serve, name="the contract example", port=port, env=ENV, cwd=app_dir,
                     ready="/healthz"):  # fmt: skip
        assert curl[:2] == ["curl", "-s"]
        if shutil.which("curl"):
            done = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=False)
            assert done.returncode == 0, done.stderr
            answer = done.stdout
        else:
            with urllib.request.urlopen(curl[-1], timeout=10) as response:
                answer = response.read().decode()
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            assert json.loads(ws.recv(10))["type"] == "welcome"
            ws.send('{"type": "add", "id": 1, "a": 1, "b": 2}')
            assert json.loads(ws.recv(10)) == {"type": "added", "total": 3}  # the push
            assert json.loads(ws.recv(10)) == {"type": "result", "id": 1, "data": 3}
            ws.send('{"type": "add", "id": 2, "a": 1000, "b": 2}')
            error = json.loads(ws.recv(10))
            assert (error["type"], error["code"]) == ("error", "too_big")
    served = json.loads(answer)
    written = json.loads((app_dir / "asyncapi.json").read_text())
    assert served["servers"]["fastcomm"]["variables"]["port"]["default"] == str(port)
    served["servers"] = written["servers"]
    served["info"]["externalDocs"] = written["info"]["externalDocs"]
    assert served == written


def test_the_diff_in_ci_fails_when_the_document_is_stale(app_dir: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for step in (["init", "-q"], ["add", "asyncapi.json"], ["commit", "-qm", "contract"]):
        subprocess.run([*git, *step], cwd=app_dir, check=True, capture_output=True)
    regenerate, diff = commands(block("contract-diff", CONTRACT), {})
    assert run(regenerate, app_dir).returncode == 0
    assert run(diff, app_dir).returncode == 0  # unchanged app: the same bytes
    source = (app_dir / "myapp.py").read_text()
    (app_dir / "myapp.py").write_text(source.replace("    total: int\n", "    total: float\n"))
    assert run(regenerate, app_dir).returncode == 0
    done = run(diff, app_dir)
    assert done.returncode == 1
    changed = [line for line in done.stdout.splitlines() if line.startswith(("-", "+"))]
    assert any(line.startswith("+") and '"number"' in line for line in changed), done.stdout
