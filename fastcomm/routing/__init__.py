"""Typed dispatch of decoded messages to handlers."""

from fastcomm.routing.router import Route, Router

__all__ = ["Route", "Router"]
