"""Coverage for the subprocesses a test starts on purpose.

When the test run is measured (``scripts/test`` runs pytest under
``coverage run``), :func:`traced` adds to a child's environment what makes
coverage.py start in it (its ``.pth`` hook reads ``COVERAGE_PROCESS_START``)
and write its data next to the parent's, so ``coverage combine`` merges it.
Only the CLI, the load generator and the servers the integration tests start
go through here; unmeasured runs get the environment unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import coverage

__all__ = ["traced"]

ROOT = Path(__file__).resolve().parents[1]


def traced(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus coverage start-up for a Python child, if this run is measured."""
    environ = dict(env)
    current = coverage.Coverage.current()
    if current is not None:
        environ["COVERAGE_PROCESS_START"] = str(ROOT / "pyproject.toml")
        environ["COVERAGE_FILE"] = str(Path(current.config.data_file).resolve())
    return environ
