from __future__ import annotations


def typescript_module(spec):
    return ""
