"""Values with units, as people type them: byte sizes and durations.

:func:`parse_size` reads ``1MiB``, ``64k``, ``16M``, ``1.5GB`` or plain bytes;
:func:`parse_duration` reads ``500ms``, ``10s``, ``5m``, ``1h`` or plain
seconds. Both raise ValueError whose message lists the accepted forms, for
the caller to prefix with the setting or flag it was given for.
:func:`format_size` and :func:`format_duration` write a value back in a form
the parsers accept.
"""

from __future__ import annotations

import re

__all__ = [
    "DURATION_UNITS",
    "SIZE_UNITS",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
]

#: Suffixes (case-insensitive): k/M/G and KiB/MiB/GiB are powers of 1024,
#: kB/MB/GB powers of 1000, b/B or none bytes.
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DECIMAL = {"kb": 1000, "mb": 1000**2, "gb": 1000**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)

#: Suffixes (case-insensitive) and their length in seconds; none means seconds.
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"\s*([-+]?\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``text``; ValueError (with the accepted forms) when it is not a size."""
    match = _SIZE.fullmatch(text.replace("_", ""))
    suffix = match.group(2).lower() if match else "?"
    if len(suffix) == 3 and suffix[0] in "kmg" and suffix.endswith("ib"):
        suffix = suffix[0]
    factor = _DECIMAL.get(suffix) or SIZE_UNITS.get(suffix)
    if match is None or factor is None:
        raise ValueError(f"must be a size such as 1048576, 64k, 16M or 1MiB, got {text!r}")
    return int(float(match.group(1)) * factor)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a bare number is seconds (``2.5``, ``1e3`` and ``inf``
    too, for the caller's range check to judge), or a number with ``ms``, ``s``,
    ``m`` or ``h``. ValueError (with the accepted forms) otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.fullmatch(text.replace("_", ""))
    factor = DURATION_UNITS.get(match.group(2).lower()) if match else None
    if match is None or factor is None:
        raise ValueError(
            f"must be a duration in seconds such as 30 or 2.5, or with a unit: "
            f"500ms, 10s, 5m, 1h; got {text!r}"
        )
    return float(match.group(1)) * factor


def format_size(value: int) -> str:
    """``value`` bytes in the largest binary unit that divides it (``1MiB``, ``1536``)."""
    for suffix, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value and value % factor == 0:
            return f"{value // factor}{suffix}"
    return str(value)


def format_duration(seconds: float) -> str:
    """``seconds`` as ``25s``, ``5m``, ``1h`` or ``250ms``: whichever is whole."""
    for suffix, factor in (("h", 3600.0), ("m", 60.0)):
        if seconds >= factor and (seconds / factor).is_integer():
            return f"{seconds / factor:g}{suffix}"
    if 0 < seconds < 1 and (seconds * 1000).is_integer():
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
