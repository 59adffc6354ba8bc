"""The package's layers, checked from its imports.

protocol -> contract -> sessions, routing, channels -> node -> http -> transports ->
app/server -> client, loadgen, cli. A module imports (at run time, anywhere
in the module) only its own layer and the ones below; imports under
``if TYPE_CHECKING:`` are for annotations and may point anywhere above the
core, but the core (protocol, sessions, routing, channels) imports nothing
above it even for annotations. Nothing below the transports imports a
WebSocket or HTTP server library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fastcomm

ROOT = Path(fastcomm.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "stats", "units", "suggest", "config", "config_checks", "config_help"}
    | {"logs", "version"},
    {"protocol", "web"},
    {"contract"},
    {"sessions", "routing", "channels"},
    {"node"},
    {"http"},
    {"transports"},
    {"app", "server", "loader", "auth", "runners"},
    {"client", "loadgen", "cli", "__main__", "__init__"},
]
SERVER_LIBRARIES = {"picows", "granian", "uvicorn", "starlette", "fastapi", "uvloop"}


def _layer_of(module: str) -> int:
    """Layer index of ``fastcomm.<part>...``; the package itself is the top layer."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else [*parts[:-1], "__init__"]
    return ".".join(parts) if parts != ["fastcomm", "__init__"] else "fastcomm"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path, *, type_only: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports outside ``if TYPE_CHECKING``
    (and inside it too with ``type_only``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_only:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    name = _module_name(path)
    own = _layer_of(name)
    for imported in runtime_imports(path):
        root = imported.split(".")[0]
        if root == "fastcomm" and imported != "fastcomm":
            assert _layer_of(imported) <= own, f"{name} (layer {own}) imports {imported}"
        elif root == "fastcomm":
            assert own == len(LAYERS) - 1, f"{name} imports the package root"
        elif root in SERVER_LIBRARIES:
            transports = _layer_of("fastcomm.transports")
            assert own >= transports, f"{name} is below the transports and imports {root}"


CORE = {"protocol", "sessions", "routing", "channels"}
CORE_TOP = max(_layer_of(f"fastcomm.{name}") for name in CORE)


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if p.relative_to(ROOT).parts[0] in CORE],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_core_imports_nothing_above_it_not_even_for_annotations(path: Path) -> None:
    name = _module_name(path)
    for imported in runtime_imports(path, type_only=True):
        if imported.startswith("fastcomm."):
            assert _layer_of(imported) <= CORE_TOP, f"{name} imports {imported}"


def test_the_type_only_check_sees_imports_under_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fastcomm.node import Node\n"
    )
    assert runtime_imports(module) == {"typing"}
    assert runtime_imports(module, type_only=True) == {"typing", "fastcomm.node"}


def test_no_import_circle_among_packages() -> None:
    """The package-level graph of run-time imports has no cycle."""
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        source = _module_name(path).split(".")
        package = source[1] if len(source) > 1 else "__init__"
        for imported in runtime_imports(path):
            parts = imported.split(".")
            if parts[0] == "fastcomm" and len(parts) > 1 and parts[1] != package:
                graph.setdefault(package, set()).add(parts[1])
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, f"import circle: {' -> '.join([*trail, node, nxt])}"
            if nxt not in state:
                walk(nxt, [*trail, node])
        state[node] = 2

    for package in list(graph):
        if package not in state:
            walk(package, [])


def test_core_imports_without_server_libraries() -> None:
    """``import fastcomm.protocol`` (and the rest of the core) needs no picows nor granian."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {sorted(SERVER_LIBRARIES)!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import fastcomm.protocol, fastcomm.sessions, fastcomm.routing, fastcomm.channels\n"
        "import fastcomm.node, fastcomm.http, fastcomm.transports.memory\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
