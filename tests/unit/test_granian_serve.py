"""``fastcomm serve --transport granian`` hands its Config to granian's worker intact."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest

from fastcomm.config import Namespace, build_config
from fastcomm.errors import ConfigError
from fastcomm.runners.granian import export_config, granian_options, serve, target_of


def test_config_survives_the_trip_through_the_environment() -> None:
    config = build_config(
        {
            "port": 9001,
            "app": "examples/asgi_app.py:app",
            "transport": "granian",
            "allowed_origins": ["https://a.example", "https://b.example"],
            "rate_limit": 12.5,
            "presence": False,
            "heartbeat": 1e-3,
            "log_format": "json",
            "namespaces": [Namespace(pattern="chat:*", history_size=7, presence=True)],
        },
        env={},
    )
    environ = {"FASTCOMM_PORT": "1", "FASTCOMM_STALE": "x", "HOME": "/root"}
    path = export_config(config, environ)
    try:
        assert path is not None and environ["FASTCOMM_CONFIG"] == path
        assert "FASTCOMM_STALE" not in environ and environ["HOME"] == "/root"
        assert build_config({}, env=environ) == config
    finally:
        if path is not None:
            os.unlink(path)


def test_without_namespaces_no_file_and_no_app_variable() -> None:
    config = build_config({}, env={})
    environ = {"FASTCOMM_APP": "old:app", "FASTCOMM_CONFIG": "/nowhere.toml"}
    assert export_config(config, environ) is None
    assert "FASTCOMM_APP" not in environ and "FASTCOMM_CONFIG" not in environ
    assert build_config({}, env=environ) == config


def test_granian_target_and_options() -> None:
    here = "fastcomm.runners.granian"
    assert target_of(build_config({}, env={})) == f"{here}:default_app"
    assert target_of(build_config({"jwt_secret": "s"}, env={})) == f"{here}:configured_app"
    assert target_of(build_config({"app": "pkg.mod:app"}, env={})) == "pkg.mod:app"
    assert target_of(build_config({"app": "dir/app.py:app"}, env={})) == f"{here}:configured_app"
    options = granian_options(build_config({"host": "0.0.0.0", "port": 81}, env={}))
    assert (options["address"], options["port"], options["interface"]) == ("0.0.0.0", 81, "asgi")
    assert options["workers"] == 1


def test_without_granian_installed_the_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "granian", None)  # import granian -> ImportError
    with pytest.raises(ConfigError, match="needs granian, a dependency of fastcomm") as refused:
        serve(build_config({"transport": "granian"}, env={}))
    # The install line it gives is the bound fastcomm declares.
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    (declared,) = [r for r in project["project"]["dependencies"] if r.startswith("granian")]
    assert str(refused.value).endswith(f"pip install '{declared}'")
