"""What every supported encoding can carry: the check before data is stored.

A publication is re-encoded for every subprotocol (JSON and MessagePack) and
nested inside replies (``message``, ``history``). Data that one of them
cannot carry would be acknowledged, then fail at delivery: so
:func:`payload_problem` refuses it first. Allowed: None, bool, int in
[-2**63, 2**64 - 1], float, str (valid Unicode: no lone surrogates), bytes,
lists and dicts with string keys, nested at most :data:`MAX_NESTING` deep.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["MAX_NESTING", "payload_problem", "to_payload"]

MAX_NESTING = 64
"""Deepest nesting of lists and dicts accepted in published data."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_SCALARS = (type(None), bool, float, bytes)


def to_payload(value: Any) -> Any:
    """``value`` as plain builtins (Structs, dataclasses... converted); raises
    :class:`TypeError` or :class:`ValueError` for what msgspec cannot encode."""
    try:
        return msgspec.to_builtins(value)
    except RecursionError:
        raise ValueError("data is nested too deeply") from None


def payload_problem(value: Any) -> tuple[str, str] | None:
    """``(path, reason)`` of the first part of ``value`` no encoding can carry
    (``path`` is relative, e.g. ``$.a[2]``), or None when all of it is fine.

    Iterative, so no input can exhaust the stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack:
        item, path, depth = stack.pop()
        kind = type(item)
        if kind is str:
            if not _valid_text(item):
                return path, "text is not valid Unicode (lone surrogate)"
        elif kind is int:
            if not _INT_MIN <= item <= _INT_MAX:
                return path, "integer out of range (-2**63 to 2**64-1)"
        elif kind in _SCALARS:
            continue
        elif kind is list or kind is tuple:
            if depth >= MAX_NESTING:
                return path, f"nested more than {MAX_NESTING} deep"
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif kind is dict:
            if depth >= MAX_NESTING:
                return path, f"nested more than {MAX_NESTING} deep"
            for key, child in item.items():
                if type(key) is not str:
                    return path, "object keys must be strings"
                if not _valid_text(key):
                    return path, "object key is not valid Unicode (lone surrogate)"
                stack.append((child, f"{path}.{key}", depth + 1))
        else:
            return path, f"values of type {kind.__name__} cannot be sent"
    return None


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
