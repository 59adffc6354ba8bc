"""Connections, sessions by id and user, and resumable records of disconnected ones."""

from fastcomm.sessions.connection import Connection
from fastcomm.sessions.identity import ConnectRequest, Identity
from fastcomm.sessions.registry import SessionRegistry
from fastcomm.sessions.session import Session
from fastcomm.sessions.transport import Transport

__all__ = ["ConnectRequest", "Connection", "Identity", "Session", "SessionRegistry", "Transport"]
