"""Find the application object named on the command line.

``module:attr`` imports a module the way ``python -m`` would see it from the
current directory; ``path/to/file.py:attr`` runs that file as a module, the
way ``python path/to/file.py`` would (its directory first on ``sys.path``).
``attr`` may be dotted (``module:holder.app``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from fastcomm.app import App
from fastcomm.errors import AppLoadError

__all__ = ["load_app"]


def load_app(spec: str) -> App:
    """Return the :class:`fastcomm.App` named by ``spec``.

    Raises :class:`AppLoadError` with a one-line message when the spec is
    malformed, the module or file cannot be found, importing it raises (the
    message gives the exception type and text, not a traceback), the attribute
    is missing, or it is not a ``fastcomm.App`` instance.
    """
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise AppLoadError(f"app must be 'module:attr' or 'path/to/file.py:attr', got {spec!r}")
    if target.endswith(".py") or "/" in target or os.sep in target:
        module = _load_file(target)
    else:
        module = _import_module(target)
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"{target!r} has no attribute {attr!r}") from None
    if not isinstance(obj, App):
        raise AppLoadError(f"{spec!r} is a {type(obj).__name__}, not a fastcomm.App")
    return obj


def _import_module(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only a missing `name` (or a parent package of it) is "not found"; a missing
        # dependency imported by the module is an error inside the module.
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise AppLoadError(f"module {name!r} not found (searched from {cwd})") from None
        raise _import_failed(name, exc) from None
    except Exception as exc:  # noqa: BLE001 - any import-time failure becomes one line
        raise _import_failed(name, exc) from None


def _load_file(filename: str) -> ModuleType:
    path = Path(filename)
    if not path.is_file():
        raise AppLoadError(f"app file {filename!r} not found")
    # A private, derived name: a file called json.py must not shadow the stdlib module.
    name = "_fastcomm_app_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot load {filename!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    sys.modules[name] = module  # before exec, so dataclasses and pickling can find it
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import-time failure becomes one line
        sys.modules.pop(name, None)
        raise _import_failed(filename, exc) from None
    return module


def _import_failed(what: str, exc: Exception) -> AppLoadError:
    text = " ".join(str(exc).split())
    return AppLoadError(f"error while importing {what!r}: {type(exc).__name__}: {text}")
