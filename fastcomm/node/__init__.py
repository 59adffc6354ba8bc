"""The node: admission, connection registry, sweep, drain and the server API.

It knows its sockets only through :class:`~fastcomm.sessions.transport.Transport`;
every transport (``fastcomm.transports``) drives the same node.
"""

from fastcomm.node.admission import Accept, Admission, Refuse
from fastcomm.node.api import ServerApi
from fastcomm.node.node import Node

__all__ = ["Accept", "Admission", "Node", "Refuse", "ServerApi"]
