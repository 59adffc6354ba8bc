"""The set-up a new machine gets: CI runs the README's test command, and that command
installs exactly the pinned versions, which satisfy what pyproject.toml declares."""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.docblocks import block

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
# scripts/refresh-pins points this at the set it is trying (newest or lowest).
PINS = Path(os.environ.get("TEST_PINS", ROOT / "constraints" / "test.txt"))


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: not a pin: {line!r}"
            found[canonicalize_name(name)] = version
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]


def holds() -> list[Requirement]:
    lines = (ROOT / "constraints" / "holds.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    command = block("setup-tests").strip()
    assert command.startswith("pip install -c constraints/test.txt ")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in (line.strip() for line in ci)


def test_every_declared_dependency_is_pinned_within_its_bounds_and_the_holds() -> None:
    pinned = pins(PINS)
    for requirement in declared() + holds():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned: run scripts/refresh-pins"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} is outside {requirement}"
        )


def test_the_environment_is_the_pinned_one() -> None:
    """What pip installed is what the pins say: a run on other versions shows here."""
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    wrong = {
        name: (version, installed.get(name))
        for name, version in pins(PINS).items()
        if installed.get(name) != version
    }
    assert not wrong, f"pinned vs installed (install with the README's command): {wrong}"


def test_every_upper_bound_of_a_runtime_dependency_says_why() -> None:
    text = PYPROJECT.read_text()
    section = text[
        text.index("\ndependencies = [") : text.index("\n]", text.index("\ndependencies = ["))
    ]
    lines = section.splitlines()
    bounded = [i for i, line in enumerate(lines) if re.search(r'^\s*"[^"#]*<', line)]
    assert bounded, "picows and granian are bounded: the parse found neither"
    for i in bounded:
        assert lines[i - 1].strip().startswith("#"), f"no reason above {lines[i].strip()}"


def test_the_asgi_extra_brings_uvicorn_with_a_websocket_library_and_tests_install_it() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    asgi = [Requirement(r) for r in extras["asgi"]]
    assert [(r.name, r.extras) for r in asgi] == [("uvicorn", {"standard"})]
    upper = [s for s in asgi[0].specifier if s.operator in ("<", "<=", "==", "~=")]
    assert not upper, "no upper bound"
    assert {str(r) for r in asgi} <= {str(Requirement(r)) for r in extras["test"]}
