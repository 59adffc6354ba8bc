"""The public API is curated: every module declares ``__all__`` and honours it."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import fastcomm

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(fastcomm.__path__, "fastcomm.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_and_defines_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names undefined {missing}"


def test_top_level_api() -> None:
    for name in ("App", "Message", "Connection", "Client", "Server", "WireError", "Rejected"):
        assert name in fastcomm.__all__


@pytest.mark.parametrize("path", sorted(Path(fastcomm.__file__).parent.rglob("*.py")))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 300, f"{path} has {lines} lines; split it by concept"
