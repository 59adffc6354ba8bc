"""Reading the marked blocks of README.md and docs/*.md, and running them.

A block is found by the marker line ``<!-- test: NAME -->`` just before it: a
fenced block (indented too, as inside a list item) or an indented one. Only
ports change when a block runs: ``8000``, ``8001`` and ``8443`` become free
ports, and ``fastcomm``, ``uvicorn`` and ``granian`` run as ``python -m ...``
of this interpreter (so ``fastcomm`` is this checkout). A command that names
no port gets its free one from ``FASTCOMM_PORT``, ``UVICORN_PORT`` and
``GRANIAN_PORT`` (see :func:`port_env`).

The blocks run as a reader runs them: a page's servers are the ones its own
blocks start (:func:`first` is the block a page starts its server in), with
the page's flags, keys and files; a block whose first line names a file
(``# client.py``) is saved under that name (:func:`save`) and run with
``python NAME`` (:func:`python`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import websockets

__all__ = [
    "DOCS",
    "ENV",
    "ROOT",
    "block",
    "commands",
    "first",
    "port_env",
    "ported",
    "python",
    "save",
    "split_env",
    "welcome",
]

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("FASTCOMM_")},
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
PROGRAMS = ("fastcomm", "uvicorn", "granian")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def block(name: str, doc: Path = ROOT / "README.md") -> str:
    """The text of the block after ``<!-- test: name -->`` in ``doc``."""
    lines = doc.read_text().splitlines()
    i = [line.strip() for line in lines].index(f"<!-- test: {name} -->") + 1
    while not lines[i].strip():
        i += 1
    if lines[i].lstrip().startswith("```"):
        indent = len(lines[i]) - len(lines[i].lstrip())
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        return textwrap.dedent("\n".join(line[indent:] for line in lines[i + 1 : end])) + "\n"
    body = []
    while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
        body.append(lines[i][4:])
        i += 1
    return "\n".join(body).strip() + "\n"


def first(doc: Path) -> tuple[str | None, str]:
    """The first code block of ``doc``: its marker's name (None if unmarked) and text.

    A page whose commands need a server starts it in this block. A fenced block
    counts, and an indented one after a blank line that is not in a list item.
    """
    lines = doc.read_text().splitlines()
    for i, line in enumerate(lines):
        fenced = line.lstrip().startswith("```")
        indented = (
            line.startswith("    ")
            and i >= 2
            and not lines[i - 1].strip()
            and lines[i - 2][:1] not in (" ", "-")
        )
        if fenced or indented:
            above = next(lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip())
            marker = re.fullmatch(r"<!-- test: (\S+) -->", above)
            if marker:
                return marker.group(1), block(marker.group(1), doc)
            return None, line.strip()
    raise ValueError(f"{doc.name} has no code block")


def ported(text: str, ports: dict[str, str]) -> str:
    """``text`` with each port number ``old`` of ``ports`` replaced by its ``new``."""
    for old, new in ports.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def commands(text: str, ports: dict[str, str]) -> list[list[str]]:
    """Shell command lines of ``text`` as argument lists, ports substituted.

    Leading ``NAME=value`` words stay in the list (see :func:`split_env`).
    """
    text = ported(text, ports)
    result = []
    for line in text.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        at = next((i for i, word in enumerate(argv) if not ASSIGNMENT.match(word)), len(argv))
        if at < len(argv) and argv[at] in PROGRAMS:
            argv[at : at + 1] = [sys.executable, "-m", argv[at]]
        if argv:
            result.append(argv)
    return result


def split_env(argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``VAR=value cmd ...`` as ``cmd ...`` and ``env`` with the variables set."""
    env = dict(env)
    while argv and ASSIGNMENT.match(argv[0]):
        name, _, value = argv[0].partition("=")
        env[name] = value
        argv = argv[1:]
    return argv, env


def save(text: str, where: Path) -> str:
    """Write ``text``, a block whose first line names its file (``# main.py``),
    to that file in ``where``; returns the name."""
    match = re.fullmatch(r"# ([\w.-]+\.(?:py|toml))", text.partition("\n")[0])
    assert match, f"the block names no file: {text.partition(chr(10))[0]!r}"
    (where / match.group(1)).write_text(text)
    return match.group(1)


def python(name: str, where: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python NAME`` run in ``where``, as the reader runs a saved script."""
    return subprocess.run(
        [sys.executable, name], cwd=where, env=ENV, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def port_env(port: int, env: dict[str, str] = ENV) -> dict[str, str]:
    """``env`` with ``port`` as the default port of fastcomm, uvicorn and granian."""
    return {**env, "FASTCOMM_PORT": str(port), "UVICORN_PORT": str(port), "GRANIAN_PORT": str(port)}


async def welcome(url: str, **options: Any) -> dict[str, Any]:
    """The first message a WebSocket client gets at ``url``: it must be ``welcome``."""
    async with websockets.connect(url, **options) as ws:
        first: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] == "welcome", first
    return first
