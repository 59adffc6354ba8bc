"""The other nodes of the server: the node registry, and commands answered by all.

Every node announces itself in the broker's node registry (a
:class:`~fastcomm.node.commands.NodeInfo`, valid ``node_ttl`` seconds) when it
starts and every third of ``node_ttl`` after that; a node that dies drops out
of it within ``node_ttl``. :meth:`Cluster.ask` applies a command here and
sends it to every other listed node, then waits (up to ``command_timeout``)
for their answers: a node that does not answer in time is left out, and the
caller gets what arrived (with the broker unreachable: this node's answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from itertools import count
from typing import TYPE_CHECKING, Any

import msgspec

from fastcomm.node.commands import Answer, Ask, Command, NodeInfo, Takeover, decode, encode

if TYPE_CHECKING:
    from fastcomm.channels.broker import BrokerHandle

__all__ = ["Cluster"]

log = logging.getLogger("fastcomm.server")

Local = Callable[[Command], Awaitable[Any]]


class _Survey:
    """The answers awaited for one request."""

    def __init__(self, peers: set[str]) -> None:
        self.peers = peers
        self.values: list[Any] = []
        self.done = asyncio.get_running_loop().create_future()

    def add(self, node: str, value: Any) -> None:
        if node in self.peers:
            self.peers.discard(node)
            self.values.append(value)
            if not self.peers and not self.done.done():
                self.done.set_result(None)


class Cluster:
    """This node among the others sharing its broker.

    ``local`` applies a command to this node's own connections; ``take_over``
    closes a local session resumed elsewhere; ``spawn`` runs tasks. The broker
    handle is set once the node's channels have started it (:attr:`handle`).
    """

    def __init__(
        self,
        uid: str,
        local: Local,
        take_over: Callable[[str], None],
        spawn: Callable[[Any], None],
        *,
        ttl: float,
        timeout: float,
    ) -> None:
        self.uid = uid
        self.local = local
        self.take_over = take_over
        self.spawn = spawn
        self.ttl = ttl
        self.timeout = timeout
        self.handle: BrokerHandle | None = None
        self._ids = count(1)
        self._waiting: dict[int, _Survey] = {}
        self.unanswered = 0  # asks some node did not answer in time

    # -- the registry ----------------------------------------------------------------
    async def announce(self, info: NodeInfo) -> None:
        assert self.handle is not None
        try:
            await self.handle.announce(encode(info), self.ttl)
        except Exception as exc:  # noqa: BLE001 - the next heartbeat tries again
            log.warning("announcing the node failed: %r", exc)

    # -- commands ----------------------------------------------------------------
    async def ask(self, command: Command, *, warn: bool = True) -> list[Any]:
        """``command``'s answers: this node's first, then those of the other listed
        nodes that answered within ``timeout`` (a WARNING names how many did not,
        or that the broker is unreachable, unless ``warn`` is False: a periodic
        ask would repeat it)."""
        assert self.handle is not None
        mine = await self.local(command)
        try:
            peers = set(await self.handle.nodes()) - {self.uid}
        except Exception as exc:  # noqa: BLE001 - the broker is away: this node only
            if warn:
                log.warning("the other nodes cannot be reached (%r): this node only", exc)
            self.unanswered += 1
            return [mine]
        if not peers:
            return [mine]
        rid = next(self._ids)
        survey = self._waiting[rid] = _Survey(peers)
        try:
            try:
                await self.handle.send(encode(Ask(rid, self.uid, command)))
            except Exception as exc:  # noqa: BLE001 - as above
                if warn:
                    log.warning("the other nodes cannot be reached (%r): this node only", exc)
                self.unanswered += 1
                return [mine]
            try:
                await asyncio.wait_for(asyncio.shield(survey.done), self.timeout)
            except TimeoutError:
                self.unanswered += 1
                if warn:
                    log.warning(
                        "%d node(s) did not answer a %s command within %.1f s",
                        len(survey.peers),
                        type(command).__name__.lower(),
                        self.timeout,
                    )
        finally:
            del self._waiting[rid]
        return [mine, *survey.values]

    async def tell(self, node: str, session: str) -> None:
        """Tell ``node`` that ``session`` was resumed elsewhere (no answer)."""
        assert self.handle is not None
        await self.handle.send(encode(Takeover(session)), node)

    def control(self, data: bytes) -> None:
        """The broker's control callback: a message from another node."""
        try:
            message = decode(data)
        except msgspec.MsgspecError:
            log.warning("ignored a control message this node cannot read")
            return
        if type(message) is Ask:
            self.spawn(self._answer(message))
        elif type(message) is Answer:
            survey = self._waiting.get(message.id)
            if survey is not None:
                survey.add(message.node, message.value)
        elif type(message) is Takeover:
            self.take_over(message.session)

    async def _answer(self, ask: Ask) -> None:
        assert self.handle is not None
        try:
            value = await self.local(ask.command)
            await self.handle.send(encode(Answer(ask.id, self.uid, value)), ask.origin)
        except Exception:
            log.exception("answering a %s command failed", type(ask.command).__name__.lower())
