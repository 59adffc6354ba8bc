"""The generated TypeScript: it compiles under ``tsc --strict``, and with the client's
``Client<Calls>`` a call is checked by its ``type`` field and its result is typed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fastcomm.contract import typescript_module
from fastcomm.loader import load_app
from tests.contract_app import app as orders
from tests.integration.npm_packages import ROOT, tsc

FLAGS = ("--strict", "--noEmit", "--target", "es2022", "--module", "es2022",
         "--moduleResolution", "bundler", "--lib", "es2022,dom")  # fmt: skip

GOOD = """
import { Client } from "./fastcomm.js";
import type { Calls, Push } from "./orders.js";

export async function run(client: Client<Calls>): Promise<string> {
  const id: string = await client.call({
    type: "place_order",
    items: [{ sku: "ABC-1", quantity: 2 }],
    payment: { type: "card", number: "4242424242424242" },
  });
  const order = await client.call({ type: "get_order", order: id, id: 3 });
  const total: number | undefined = order?.total;
  const push: Push = { type: "order_shipped", order: id, at: "2026-01-01T00:00:00Z" };
  return id + String(total) + push.type;
}

export async function connected(url: string): Promise<string> {
  const client = await Client.connect<Calls>(url);
  return client.call({ type: "place_order", items: [], payment: { type: "voucher", code: "X" } });
}

export async function untyped(url: string): Promise<unknown> {
  const client = await Client.connect(url);  // no Calls: any message, an unknown result
  return client.call({ type: "anything", n: 1 });
}
"""

BAD = {
    "a wrong field type": (
        'client.call({ type: "place_order", items: "three", payment: { type: "voucher", '
        'code: "X" } })',
        "Type 'string' is not assignable to type 'Item[]'",
    ),
    "a wrong result type": (
        'const n: number = await client.call({ type: "get_order", order: "1" })',
        "is not assignable to type 'number'",
    ),
    "an unknown type": ('client.call({ type: "cancel_order", order: "1" })', "cancel_order"),
    "a missing field": ('client.call({ type: "get_order" })', "order"),
    "a wrong union member": (
        'client.call({ type: "place_order", items: [], payment: { type: "cash" } })',
        "cash",
    ),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "fastcomm" / "web" / "fastcomm.d.ts", tmp_path / "fastcomm.d.ts")
    (tmp_path / "orders.d.ts").write_text(typescript_module(orders.contract()))
    return tmp_path


def test_the_generated_declarations_compile_and_type_calls(project: Path) -> None:
    (project / "good.ts").write_text(GOOD)
    done = tsc(*FLAGS, "orders.d.ts", "good.ts", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_apps_declarations_compile(tmp_path: Path) -> None:
    example = load_app(str(ROOT / "examples" / "app.py") + ":app")
    (tmp_path / "app.d.ts").write_text(typescript_module(example.contract()))
    done = tsc(*FLAGS, "app.d.ts", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (tmp_path / "app.d.ts").read_text()
    assert '"add": { request: Add; result: number };' in text
    assert "export type Push = Echoed;" in text


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_mistyped_call_fails_to_compile(case: str, project: Path) -> None:
    line, phrase = BAD[case]
    (project / "bad.ts").write_text(
        'import type { Client } from "./fastcomm.js";\n'
        'import type { Calls } from "./orders.js";\n'
        "export async function run(client: Client<Calls>): Promise<void> {\n"
        f"  {line};\n}}\n"
    )
    done = tsc(*FLAGS, "bad.ts", cwd=project)
    assert done.returncode != 0
    assert "bad.ts(4," in done.stdout and phrase in done.stdout, done.stdout
