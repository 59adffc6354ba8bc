"""What ``fastcomm serve --demo`` adds: join/leave events on the demo channels and a URL.

The demo page (``/demo``) chats on :data:`DEMO_CHANNEL`. Join/leave events
are off by default; the configuration (:func:`fastcomm.config.build_config`)
appends :data:`DEMO_NAMESPACE` turning them on for ``demo:*`` only, after the
configured namespaces (a configured namespace matching ``demo:*`` still wins),
so ``FASTCOMM_DEMO`` works wherever the configuration is built.
"""

from __future__ import annotations

from fastcomm.config import DEMO_NAMESPACE, Config

__all__ = ["DEMO_CHANNEL", "DEMO_NAMESPACE", "demo_url"]

DEMO_CHANNEL = "demo:lobby"


def demo_url(config: Config) -> str:
    """The address of the demo page (``?ws=`` names a WebSocket path other than /ws;
    ``<port>`` stands for the port chosen at start when ``port`` is 0)."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    port = config.port or "<port>"
    query = "" if config.path == "/ws" else f"?ws={config.path}"
    return f"http://{host}:{port}/demo{query}"
