"""fastcomm.web: the shipped files as HTTP bodies, and what --demo configures."""

from __future__ import annotations

from pathlib import Path

from fastcomm.config import DEMO_NAMESPACE, Config, Namespace, build_config
from fastcomm.web import asset, asset_paths
from fastcomm.web.demo import demo_url


def test_library_is_always_served_and_the_demo_only_when_asked() -> None:
    assert asset_paths() == ("/fastcomm.js", "/msgpack.js", "/fastcomm.d.ts")
    assert asset_paths(demo=True)[-1] == "/demo"
    body, kind = asset("/fastcomm.js") or (b"", "")
    assert kind == "text/javascript; charset=utf-8"
    assert b'from "./msgpack.js"' in body
    assert (asset("/msgpack.js") or (b"", ""))[0].startswith(b"// A small, complete MessagePack")
    assert b"export declare class Client" in (asset("/fastcomm.d.ts") or (b"", ""))[0]
    assert asset("/demo") is None
    page, kind = asset("/demo", demo=True) or (b"", "")
    assert kind == "text/html; charset=utf-8" and b"<!doctype html>" in page
    assert asset("/nope", demo=True) is None
    assert asset("/fastcomm.js")[0] is asset("/fastcomm.js")[0]  # type: ignore[index]  # cached


def test_the_docs_page_is_served_only_with_docs() -> None:
    assert asset_paths(docs=True)[-1] == "/docs"
    assert asset_paths(demo=True, docs=True)[-2:] == ("/demo", "/docs")
    assert asset("/docs") is None
    page, kind = asset("/docs", docs=True) or (b"", "")
    assert kind == "text/html; charset=utf-8" and b"<!doctype html>" in page


def test_demo_config_enables_join_leave_after_configured_namespaces(tmp_path: Path) -> None:
    assert build_config({}, env={}).namespaces == ()
    toml = tmp_path / "fastcomm.toml"
    toml.write_text('[[namespaces]]\npattern = "demo:quiet"\njoin_leave = false\n')
    mine = Namespace(pattern="demo:quiet", join_leave=False)
    for config in (
        build_config({"demo": True}, env={}, config_file=str(toml)),
        build_config({}, env={"FASTCOMM_DEMO": "1"}, config_file=str(toml)),  # as under ASGI
    ):
        assert config.namespaces == (mine, DEMO_NAMESPACE)
    assert DEMO_NAMESPACE.join_leave is True


def test_demo_url() -> None:
    assert demo_url(Config(port=9000)) == "http://127.0.0.1:9000/demo"
    assert demo_url(Config(host="::1", path="/rt")) == "http://[::1]:8000/demo?ws=/rt"
    assert demo_url(Config(port=0)) == "http://127.0.0.1:<port>/demo"
