"""Suggestions ("did you mean ...?") for a misspelled flag, setting or variable."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name: str, known: Iterable[str], *, prefix: str = "") -> str:
    """`` (did you mean X?)`` with the known name closest to ``name``, or "" if none is close.

    ``prefix`` (``--``, ``FASTCOMM_``) is shared by every name, so it is left out of
    the comparison, where it would make unrelated names look alike, and put back in X.
    """
    name, known = name.removeprefix(prefix), sorted(known, key=len)
    # A name cut short is the start of what was meant (--max-conn: --max-connections).
    close = [k for k in known if k.startswith(name)][:1] if len(name) >= 3 else []
    close = close or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""
