"""What each setting means, and its unit: the one table ``--help`` and the docs use."""

from __future__ import annotations

__all__ = ["BYTES", "DURATIONS", "HELP", "SECONDS", "SIZES"]

BYTES, SECONDS = "bytes", "seconds"
#: What each setting means and its unit ("" when it has none), by section: the
#: one description that ``fastcomm serve --help`` and the docs are made from. The
#: texts name other settings by their flags (``--rate-limit``), as --help shows them.
HELP: dict[str, dict[str, tuple[str, str]]] = {
    "listening": {
        "host": ("address to listen on", ""),
        "port": ("port to listen on; 0 picks a free one", ""),
        "path": ("URL path of the WebSocket endpoint", ""),
        "app": ("the App: module:attr or path/to/file.py:attr", ""),
        "echo": (
            "serve an echo endpoint instead of the protocol, for conformance testing; "
            "--max-message-size then defaults to 16 MiB + 1 KiB",
            "",
        ),
        "demo": ("serve the demo chat page at /demo", ""),
        "docs": ("serve the app's contract at /asyncapi.json and its page at /docs", ""),
        "transport": ("what serves the sockets", ""),
        "workers": (
            "worker processes serving one port (picows: a supervisor restarts those that "
            "die; granian: its own workers); more than 1 needs a broker shared between "
            "processes (--broker redis://...; the memory broker is per process)",
            "",
        ),
        "worker_id": ("this worker's number, 1 to --workers; set by the supervisor", ""),
        "server_id": ("the id shared by the workers of one supervisor; set by it", ""),
        "broker": (
            "where channel state lives: memory (this process) or a Redis URL shared by "
            "several processes, redis://[:PASSWORD@]HOST:PORT/DB, rediss://... (TLS) or "
            "unix:///path/to/redis.sock",
            "",
        ),
        "broker_prefix": ("start of every Redis key and pub/sub channel of this app", ""),
        "readyz_needs_broker": (
            "answer /readyz 503 while the broker is unreachable (by default it stays 200: "
            "all nodes share the broker)",
            "",
        ),
        "broker_wait": (
            "at start, wait this long for the broker to answer, retrying with backoff; "
            "0: an unreachable broker is an error at once (exit status 2)",
            SECONDS,
        ),
    },
    "TLS": {
        "ssl_certfile": ("PEM certificate chain: serve wss://; needs --ssl-keyfile", "file"),
        "ssl_keyfile": ("PEM private key of the --ssl-certfile certificate", "file"),
    },
    "HTTP API": {
        "api_key": ("turns the HTTP API on; X-API-Key or 'Authorization: apikey KEY'", ""),
        "api_port": ("the HTTP API's own port, on the picows transport", ""),
        "api_max_body": ("request body limit; 413 above it", BYTES),
    },
    "limits": {
        "max_connections": ("open connections; more get HTTP 503", "connections"),
        "max_pending_handshakes": ("connections not yet upgraded; 503 beyond", "connections"),
        "max_message_size": (
            "message size after reassembly; close 1009 above it (16 MiB + 1 KiB with --echo)",
            BYTES,
        ),
        "max_outbound_buffer": ("unsent data per connection; close 4008 above it", BYTES),
        "max_total_outbound": (
            "unsent data over all connections; each slow one then gets its share (4008)",
            BYTES,
        ),
        "allowed_origins": (
            "browser origins allowed; none given: only pages on the Host the upgrade "
            "was sent to; * allows any",
            "",
        ),
        "rate_limit": ("messages per connection, sustained; 'rate_limited' beyond", "per second"),
        "rate_burst": ("messages a connection may send at once", "messages"),
        "rate_limit_close_after": (
            "'rate_limited' errors in a row before close 4029",
            "errors",
        ),
        "frame_rate_limit": ("frames per connection; unset: 4x --rate-limit + 100", "per second"),
        "frame_burst": ("frames at once; unset: 4x --rate-burst + 100", "frames"),
        "max_subscriptions": ("channels per connection", "channels"),
        "max_channels": ("channels with subscribers on this node", "channels"),
        "max_streams": (
            "channel streams (position and history) the embedded broker keeps; over it, "
            "unsubscribed ones without history go first, least recently used first",
            "streams",
        ),
        "max_resumable_sessions": ("detached sessions kept; the oldest go first", "sessions"),
        "max_channel_length": ("longest channel name", "characters"),
    },
    "timeouts": {
        "handshake_timeout": ("time allowed for the HTTP upgrade", SECONDS),
        "heartbeat": ("ping a connection idle for this long", SECONDS),
        "heartbeat_timeout": ("close 1001 if the pong takes longer", SECONDS),
        "drain_timeout": ("on SIGTERM/SIGINT, wait this long for handlers", SECONDS),
        "session_ttl": ("how long a disconnected session can be resumed", SECONDS),
        "session_checkpoint": (
            "how often live sessions' records (channel positions) are written; after a "
            "node dies, its clients resume from the last one",
            SECONDS,
        ),
        "node_ttl": (
            "a node that stops announcing itself (a node that died) leaves the node "
            "registry after this",
            SECONDS,
        ),
        "command_timeout": (
            "how long a server API call waits for the other nodes' answers",
            SECONDS,
        ),
        "idempotency_window": (
            "a publish that repeats an idempotency key used on its channel within this "
            "window publishes nothing again",
            SECONDS,
        ),
        "publish_timeout": (
            "longest wait for the broker on a publish or any other broker call; then the "
            "request is answered 'unavailable'",
            SECONDS,
        ),
    },
    "auth": {
        "jwt_secret": ("verify a JWT on every connection with this key", ""),
        "jwt_algorithms": ("JWT algorithms accepted", ""),
        "jwt_audience": ("required JWT aud claim", ""),
        "jwt_issuer": ("required JWT iss claim", ""),
    },
    "channels": {
        "history_size": ("publications kept per channel for recovery", "publications"),
        "history_ttl": ("how long publications are kept", SECONDS),
        "history_max_bytes": ("history kept per channel; the oldest go first", BYTES),
        "max_history_bytes": (
            "history kept over all channels; the least recently used channels' oldest "
            "publications go first",
            BYTES,
        ),
        "history_meta_ttl": (
            "how long a channel's position (epoch, offset) outlives its last publication; "
            "unset: the longest of --session-ttl and the history TTLs, plus 60 s",
            SECONDS,
        ),
        "presence": ("track who is subscribed", ""),
        "presence_ttl": (
            "a member whose node stops refreshing it (a node that died) is gone after this",
            SECONDS,
        ),
        "join_leave": ("send join/leave events to subscribers", ""),
        "client_publish": ("let clients publish", ""),
        "namespaces": ("per-pattern channel settings (TOML [[namespaces]] only)", ""),
    },
    "tuning and logs": {
        "read_buffer_size": ("initial read buffer per connection", BYTES),
        "log_level": ("least severe level logged", ""),
        "log_format": ("json: one JSON object per line", ""),
    },
}


def _with_unit(unit: str) -> frozenset[str]:
    return frozenset(n for section in HELP.values() for n, (_, u) in section.items() if u == unit)


#: The settings that take a size (bytes, or ``64k``...) and a duration (``10s``...).
SIZES, DURATIONS = _with_unit(BYTES), _with_unit(SECONDS)
