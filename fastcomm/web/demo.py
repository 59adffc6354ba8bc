"""What ``fastcomm serve --demo`` adds: join/leave events on the demo channels and a URL.

The demo page (``/demo``) chats on :data:`DEMO_CHANNEL`. Join/leave events
are off by default; :func:`demo_config` appends a namespace turning them on
for ``demo:*`` only, after the configured namespaces (a configured namespace
matching ``demo:*`` still wins).
"""

from __future__ import annotations

import msgspec

from fastcomm.config import Config, Namespace

__all__ = ["DEMO_CHANNEL", "DEMO_NAMESPACE", "demo_config", "demo_url"]

DEMO_CHANNEL = "demo:lobby"
DEMO_NAMESPACE = Namespace(pattern="demo:*", join_leave=True, presence=True, client_publish=True)


def demo_config(config: Config) -> Config:
    """``config`` with :data:`DEMO_NAMESPACE` appended when ``config.demo`` is on."""
    if not config.demo:
        return config
    return msgspec.structs.replace(config, namespaces=(*config.namespaces, DEMO_NAMESPACE))


def demo_url(config: Config) -> str:
    """The address of the demo page (``?ws=`` names a WebSocket path other than /ws;
    ``<port>`` stands for the port chosen at start when ``port`` is 0)."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    port = config.port or "<port>"
    query = "" if config.path == "/ws" else f"?ws={config.path}"
    return f"http://{host}:{port}/demo{query}"
