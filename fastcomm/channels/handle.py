"""What every broker's node handle shares: the broker's channel methods and session
store, bound once, and the node's callbacks."""

from __future__ import annotations

from typing import Generic, TypeVar

from fastcomm.channels.broker import Channels, Control, Deliver

__all__ = ["BoundHandle"]

B = TypeVar("B", bound=Channels)


class BoundHandle(Generic[B]):
    """The shared part of a :class:`~fastcomm.channels.broker.BrokerHandle` on
    ``broker``: its channel methods (bound once: no indirection per call), its
    session store, the node's ``deliver``, ``uid`` and ``control``, and the channels
    the node is subscribed to."""

    def __init__(self, broker: B, deliver: Deliver, uid: str, control: Control | None) -> None:
        self.broker = broker
        self.deliver = deliver
        self.uid = uid
        self.control = control
        self.channels: set[str] = set()
        self.publish = broker.publish
        self.publish_event = broker.publish_event
        self.history = broker.history
        self.position = broker.position
        self.presence_add = broker.presence_add
        self.presence_remove = broker.presence_remove
        self.presence_leave = broker.presence_leave
        self.presence_keep = broker.presence_keep
        self.presence = broker.presence
        self.sessions = broker.sessions
