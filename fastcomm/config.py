"""The one frozen configuration of a fastcomm server, with documented defaults.

:func:`build_config` is the only place that merges the sources, in this order
of precedence: explicit values (CLI flags or keyword arguments), then
``FASTCOMM_*`` environment variables, then a TOML file, then the defaults
below. Every other module receives a :class:`Config` and never reads the
environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from fastcomm.config_checks import check
from fastcomm.config_help import BYTES, DURATIONS, HELP, SECONDS, SIZES
from fastcomm.errors import ConfigError
from fastcomm.suggest import did_you_mean
from fastcomm.units import parse_duration, parse_size

__all__ = [
    "BYTES",
    "DEMO_NAMESPACE",
    "DURATIONS",
    "ECHO_MAX_MESSAGE_SIZE",
    "ENV_PREFIX",
    "HELP",
    "SECONDS",
    "SIZES",
    "Config",
    "build_config",
]

ENV_PREFIX = "FASTCOMM_"
MiB = 1024 * 1024
# The echo endpoint's max_message_size unless a source sets one: the Autobahn
# TestSuite (case group 9) echoes messages of 16 MiB, plus room for framing slack.
ECHO_MAX_MESSAGE_SIZE = 16 * MiB + 1024


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Server settings; what each one means, and its unit, is in :data:`HELP`."""

    # Listening
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/ws"
    app: str | None = None
    echo: bool = False
    demo: bool = False
    docs: bool = True
    transport: Literal["picows", "granian"] = "picows"
    workers: int = 1
    worker_id: int | None = None
    server_id: str | None = None
    broker: str = "memory"
    broker_prefix: str = "fastcomm:"
    broker_wait: float = 0.0

    # TLS
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    # HTTP server API (off unless api_key is set)
    api_key: str | None = None
    api_port: int | None = None
    api_max_body: int = 1 * MiB

    # Limits
    max_connections: int = 10_000
    max_pending_handshakes: int = 1024
    max_message_size: int = 1 * MiB
    max_outbound_buffer: int = 4 * MiB
    max_total_outbound: int = 1024 * MiB
    allowed_origins: tuple[str, ...] = ()
    rate_limit: float = 200.0
    rate_burst: int = 400
    rate_limit_close_after: int = 50
    frame_rate_limit: float | None = None
    frame_burst: int | None = None
    max_subscriptions: int = 256
    max_channels: int = 100_000
    max_streams: int = 100_000
    max_resumable_sessions: int = 10_000
    max_channel_length: int = 255

    # Timeouts
    handshake_timeout: float = 5.0
    heartbeat: float = 25.0
    heartbeat_timeout: float = 10.0
    drain_timeout: float = 10.0
    session_ttl: float = 300.0
    session_checkpoint: float = 5.0
    node_ttl: float = 15.0
    command_timeout: float = 2.0
    publish_timeout: float = 5.0
    idempotency_window: float = 300.0
    readyz_needs_broker: bool = False

    # Auth (JWT on the connect hook when jwt_secret is set; see docs/AUTH.md)
    jwt_secret: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # Channels (defaults for channels that no namespace matches)
    history_size: int = 100
    history_ttl: float = 300.0
    history_max_bytes: int = 16 * MiB
    max_history_bytes: int = 256 * MiB
    history_meta_ttl: float | None = None
    presence: bool = True
    presence_ttl: float = 60.0
    join_leave: bool = False
    client_publish: bool = True
    namespaces: tuple[Namespace, ...] = ()

    # Transport tuning and logging
    read_buffer_size: int = 1024
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"


class Namespace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Channel features for channels whose name matches ``pattern`` (fnmatch)."""

    pattern: str
    history_size: int | None = None
    history_ttl: float | None = None
    presence: bool | None = None
    join_leave: bool | None = None
    client_publish: bool | None = None


DEMO_NAMESPACE = Namespace(pattern="demo:*", join_leave=True, presence=True, client_publish=True)
"""What ``demo`` adds after the configured namespaces: the demo page's channels
announce join and leave (a configured namespace matching ``demo:*`` still wins)."""

_FIELDS = {f.name: f for f in msgspec.structs.fields(Config)}
# A list setting's flag is singular (--allowed-origin); its variable may be either.
_SINGULAR = {n.removesuffix("s"): n for n, f in _FIELDS.items() if "tuple[str" in str(f.type)}
_VARIABLES = [n.upper() for n in [*_FIELDS, *_SINGULAR, "config"] if n != "namespaces"]
_NAMESPACE_FIELDS = [f.name for f in msgspec.structs.fields(Namespace)]
_UNKNOWN = re.compile(r"Object contains unknown field `(\w+)`(?: - at `\$\.namespaces\[(\d+)\]`)?")


def _from_env(env: Mapping[str, str], where: dict[str, str]) -> dict[str, Any]:
    """Read ``FASTCOMM_<FIELD>`` variables; values are parsed like TOML scalars."""
    raw: dict[str, Any] = {}
    for key, text in sorted(env.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        name = _SINGULAR.get(name, name)
        if name not in _FIELDS or name == "namespaces":
            maybe = did_you_mean(key.upper(), _VARIABLES, prefix=ENV_PREFIX)
            raise ConfigError(f"unknown environment variable {key}{maybe}")
        if name in where:
            raise ConfigError(f"{where[name]} and {key} are the same setting: set one")
        raw[name] = _parse_env_value(name, key, text)
        where[name] = key
    return raw


def _parse_env_value(name: str, key: str, text: str) -> Any:
    kind = str(_FIELDS[name].type)
    if "tuple" in kind:
        return [part.strip() for part in text.split(",") if part.strip()]
    if "bool" in kind:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} must be a boolean, got {text!r}")
    if name in SIZES or name in DURATIONS:
        return _with_unit(key, name, text)
    if "int" in kind or "float" in kind:
        try:
            return tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(f"{key} must be a number, got {text!r}") from None
    return text


def _with_unit(source: str, name: str, value: Any) -> Any:
    """A size or duration setting's value: strings with units become bytes or
    seconds; other values go to msgspec as they are."""
    if not isinstance(value, str):
        return value
    try:
        return parse_size(value) if name in SIZES else parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{source} {exc}") from None


def _units_in(values: dict[str, Any], source: str) -> None:
    """Parse, in place, the size and duration strings of ``values`` (one source)."""
    for name in (SIZES | DURATIONS) & values.keys():
        values[name] = _with_unit(f"{source}{name}", name, values[name])


def _from_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not valid TOML: it is not UTF-8") from None
    # Accept either top-level keys or a [fastcomm] table.
    section = data.get("fastcomm", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [fastcomm] must be a table")
    _units_in(section, f"config file {path}: ")
    namespaces = section.get("namespaces")
    for index, table in enumerate(namespaces if isinstance(namespaces, list) else ()):
        if isinstance(table, dict):
            _units_in(table, f"config file {path}: namespaces[{index}].")
    return section


def _invalid(exc: msgspec.ValidationError) -> str:
    """msgspec's message or, for a key that is no setting, one naming the closest."""
    found = _UNKNOWN.fullmatch(str(exc))
    if found is None:
        return f"invalid configuration: {exc}"
    name, index = found.groups()
    if index is None:
        return f"unknown setting {name}{did_you_mean(name, _FIELDS)}"
    return f"namespaces[{index}]: unknown setting {name}{did_you_mean(name, _NAMESPACE_FIELDS)}"


def _located(message: str, where: Mapping[str, str]) -> str:
    """``message`` (about one setting) prefixed with the variable or file it came from."""
    found = re.search(r"`\$\.(\w+)|^unknown setting (\w+)", message) or re.match(r"(\w+)", message)
    name = next((g for g in found.groups() if g), "") if found else ""
    return f"{where[name]}: {message}" if name in where else message


def build_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Config:
    """Merge explicit values, environment and TOML file over the defaults.

    ``env`` defaults to ``os.environ``. ``overrides`` entries that are None are
    ignored (an unset CLI flag). Size settings accept units (``64k``, ``1MiB``),
    durations too (``500ms``, ``10s``, ``5m``, ``1h``; a bare number is seconds).
    Raises :class:`ConfigError` with a one-line message naming the offending
    setting and, for a variable or the file, where it came from.
    """
    environ = os.environ if env is None else env
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        merged.update(_from_toml(path))
        where.update(dict.fromkeys(merged, f"config file {path}"))
    variables = {k: v for k, v in environ.items() if k != ENV_PREFIX + "CONFIG"}
    env_where: dict[str, str] = {}
    merged.update(_from_env(variables, env_where))
    where.update(env_where)
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    _units_in(explicit, "")
    merged.update(explicit)
    for name in explicit:
        where.pop(name, None)
    if merged.get("echo") and "max_message_size" not in merged:
        merged["max_message_size"] = ECHO_MAX_MESSAGE_SIZE  # see docs/CONFORMANCE.md
    try:
        config = msgspec.convert(merged, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_located(_invalid(exc), where)) from None
    try:
        config = check(config)
    except ConfigError as exc:
        raise ConfigError(_located(str(exc), where)) from None
    if config.demo:
        config = msgspec.structs.replace(config, namespaces=(*config.namespaces, DEMO_NAMESPACE))
    return config
