"""Logging setup for the ``fastcomm`` command: one stderr handler, text or JSON lines.

Library code only calls ``logging.getLogger(__name__)`` and passes context as
``extra={...}``; this module decides how records look. Text lines read
``2026-11-25T19:00:00.123Z INFO fastcomm.server: message key=value``; JSON lines
hold one object per record with ``ts``, ``level``, ``logger``, ``msg``, the
``extra`` fields and, when an exception is attached, ``exc``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import msgspec

__all__ = ["configure_logging"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_json = msgspec.json.Encoder(enc_hook=repr)  # unknown extra values are logged as their repr


def _timestamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        pairs = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        if pairs:
            line = f"{line} {pairs}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _json.encode(entry).decode()


class _Handler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second call replaces it."""


class _Worker(logging.Filter):
    """Adds ``worker=N`` to every record of a worker process."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


def configure_logging(level: str, fmt: str, worker: int | None = None) -> None:
    """Send ``fastcomm`` records at ``level`` and up, ``picows`` warnings and up, to stderr.

    ``level`` is one of debug, info, warning, error; ``fmt`` is ``text`` or
    ``json``; with ``worker`` (a worker of ``--workers``) every line carries
    ``worker=N`` (JSON: ``"worker": N``). Calling it again replaces the previous
    setup instead of adding a handler. Both loggers stop propagating to the root
    logger so records are not printed twice. Raises ValueError for an unknown level or format.
    """
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}")
    handler = _Handler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    if worker is not None:
        handler.addFilter(_Worker(worker))
    for name, logger_level in (("fastcomm", _LEVELS[level]), ("picows", logging.WARNING)):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logger_level)
        logger.propagate = False
