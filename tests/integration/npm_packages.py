"""Run the npm packages of package.json that the tests use (``npm ci`` at the
project root installs them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["ROOT", "node_script", "tsc"]

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "node_modules"


def _require(package: str) -> None:
    if not (MODULES / package).is_dir():
        raise AssertionError(f"node_modules/{package} is missing: run `npm ci` at {ROOT}")


def node_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``node tests/js/<script> ARGS`` from the project root."""
    _require("@asyncapi/parser")
    return subprocess.run(
        ["node", str(ROOT / "tests" / "js" / script), *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def tsc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The TypeScript compiler of ``package.json``, run in ``cwd``."""
    _require("typescript")
    return subprocess.run(
        ["node", str(MODULES / "typescript" / "bin" / "tsc"), *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
