"""The files and code the docs name exist: every repository path in README.md,
BENCHMARKS.md and docs/*.md (in backticks, or at the start of a line of a file
listing), every bare file name in backticks, and every ``Class.attribute`` of a
fastcomm class and ``fastcomm.module.name`` they cite."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
from pathlib import Path

import pytest

import fastcomm

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("fastcomm/", "tests/", "bench/", "scripts/", "examples/", "docs/", "constraints/", ".ci/")
# Files the docs have the reader write, and one they describe as not written yet.
READERS = {"myapp.py", "main.py", "client.py", "embedded.py", "tls_client.py", "fastcomm.toml"}
READERS |= {"client.ts", "nodes.py"}
PLANNED = {"redis.py"}
# What scripts/refresh-pins writes.
MADE = {"constraints/REFRESH.md"}
FENCE = re.compile(r"^\s*```.*?^\s*```", re.S | re.M)
SPAN = re.compile(r"``(.+?)``|`([^`\n]+)`")
PATH = re.compile(r"(?<![\w./-])((?:\.ci|[a-z]+)/[\w./*-]*)")
FILE = re.compile(r"(?<![\w./-])([\w-]+\.(?:py|md|toml|js|ts|html|txt))\b")
# `owner.name[.more]`, not a file name (`fastcomm.js`) nor inside a path or URL
DOTTED = re.compile(
    r"(?<![\w./-])([A-Za-z_]\w*)\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?![\w/-])"
    r"(?<!\.js)(?<!\.ts)(?<!\.toml)(?<!\.py)(?<!\.md)"
)


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def spans(text: str) -> list[str]:
    """The inline code of ``text``, outside fenced blocks."""
    return [a or b for a, b in SPAN.findall(FENCE.sub("", text))]


def listed(text: str) -> list[str]:
    """The paths of the file listings: a fenced ``text`` block's first words, a
    name indented below a ``dir/`` line read as ``dir/name``."""
    found = []
    for listing in re.findall(r"^```text\n(.*?)^```", text, re.S | re.M):
        folder = ""
        for line in listing.splitlines():
            word = line.split()[0] if line.strip() else ""
            if not line.startswith(" ") and word.endswith("/"):
                folder = word
            if line.startswith(" ") and folder:
                found.append(folder + word)
            elif word.startswith(TOP):
                found.append(word)
    return found


def paths(text: str) -> list[str]:
    cited = [m for span in spans(text) for m in PATH.findall(span)]
    indented = re.findall(r"^    ([\w.]+/[\w./-]*)", text, re.M)  # an indented listing
    return [p.rstrip(".,") for p in cited + listed(text) + indented if p.startswith(TOP)]


def found(path: str) -> bool:
    """``path`` exists (a pattern with ``*``: something matches it)."""
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def fastcomm_classes() -> dict[str, list[type]]:
    classes: dict[str, list[type]] = {}
    for module in pkgutil.walk_packages(fastcomm.__path__, "fastcomm."):
        if module.name.endswith("__main__"):
            continue
        for name, value in vars(importlib.import_module(module.name)).items():
            fastcomm_class = inspect.isclass(value) and value.__module__.startswith("fastcomm")
            if fastcomm_class and value not in classes.setdefault(name, []):
                classes[name].append(value)
    return classes


def has(cls: type, attribute: str) -> bool:
    """A class, slot, annotated or ``self.`` attribute of ``cls`` or its bases."""
    for klass in cls.__mro__:
        if attribute in vars(klass) or attribute in getattr(klass, "__annotations__", {}):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if re.search(rf"\bself\.{attribute}\s*(?::[^=\n]+)?=[^=]", source):
            return True
    return False


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if not hasattr(value, part):
                return False
            value = getattr(value, part)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_the_page_names_exists(page: Path) -> None:
    missing = sorted({p for p in paths(page.read_text()) if not found(p)} - MADE)
    assert not missing, f"{page.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_of_the_page_leads_to_a_file(page: Path) -> None:
    links = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", FENCE.sub("", page.read_text()))
    missing = [link for link in links if not (page.parent / link).exists()]
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_name_the_page_names_exists_somewhere(page: Path) -> None:
    names = {Path(p).name for p in tracked()} | READERS | PLANNED
    cited = {m for span in spans(page.read_text()) for m in FILE.findall(span)}
    assert not cited - names, f"{page.name} names files that are nowhere: {cited - names}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_fastcomm_symbol_the_page_names_exists(page: Path) -> None:
    classes = fastcomm_classes()
    wrong = []
    for span in spans(page.read_text()):
        for owner, rest in DOTTED.findall(span):
            if owner == "fastcomm":
                if not resolves(f"fastcomm.{rest}") and not rest.startswith("v1"):
                    wrong.append(f"fastcomm.{rest}")
            elif owner in classes:
                attribute = rest.split(".")[0]
                if not any(has(cls, attribute) for cls in classes[owner]):
                    wrong.append(f"{owner}.{attribute}")
    assert not wrong, f"{page.name} names what fastcomm does not have: {wrong}"


def test_the_checks_catch_what_was_wrong() -> None:
    """What the docs once cited, and the forms the checks read."""
    text = (
        "`fastcomm/server/listener.py`, `Server._route`, `catchup.py`\n"
        "```text\nfastcomm/channels/\n  api.py   the API\n```\n"
    )
    assert paths(text) == [
        "fastcomm/server/listener.py", "fastcomm/channels/", "fastcomm/channels/api.py"
    ]  # fmt: skip
    assert not has(fastcomm_classes()["Server"][0], "_route")
    assert FILE.findall(spans(text)[2]) == ["catchup.py"]
    assert not resolves("fastcomm.server.listener")
