"""Sessions by id and user, and resumable records of disconnected ones."""

from fastcomm.sessions.registry import SessionRegistry
from fastcomm.sessions.session import Session

__all__ = ["Session", "SessionRegistry"]
