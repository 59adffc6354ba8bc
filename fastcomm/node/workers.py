"""The other workers of one ``--workers`` server, as the answering worker sees them.

HTTP endpoints are synchronous (picows answers them inside its handshake
callback), so a worker cannot ask the others while it answers ``/status``
or ``/metrics``. Instead the sweep calls :meth:`Workers.refresh` once a
second: a :class:`~fastcomm.node.commands.Snapshot` command over the
control channel, answered by the nodes with the same ``server_id``, whose
answers are kept. What the other workers report is therefore up to about
a second old (``workers_age`` in ``/status``), more while a worker that
died is still listed in the node registry (up to ``node_ttl``): the ask
then waits ``command_timeout`` for it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastcomm.node.commands import Snapshot

if TYPE_CHECKING:
    from fastcomm.node.node import Node

__all__ = ["KEPT", "Workers"]

KEPT = ("status", "worker", "pid", "uptime", "broker")
"""Fields of the answering worker kept as they are; the rest are summed."""
_LISTED = ("worker", "pid", "status", "uptime", "connections", "sessions", "messages_in")


def _add(total: dict[str, Any], figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        if key in KEPT:
            continue
        if isinstance(value, dict):
            into = total.setdefault(key, {})
            for name, count in value.items():
                into[name] = into.get(name, 0) + count
        elif isinstance(value, int | float) and not isinstance(value, bool):
            before = total.get(key)
            total[key] = value if before is None else before + value


class Workers:
    """The last snapshots of the other workers of ``node``'s server, by worker id."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.server = node.config.server_id
        self.peers: dict[int, dict[str, Any]] = {}
        self.refreshed = 0.0
        self._task: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        """Ask the other workers for their snapshots (one ask at a time)."""
        if self.server is None or (self._task is not None and not self._task.done()):
            return
        if not getattr(self.node.broker, "up", True):
            return  # the broker is away: the last figures stay (workers_age grows)
        self._task = asyncio.get_running_loop().create_task(self._refresh(self.server))

    async def _refresh(self, server: str) -> None:
        try:
            _, *answers = await self.node.cluster.ask(Snapshot(server), warn=False)
        except Exception:  # noqa: BLE001 - the broker is down: keep the last ones
            return
        mine = self.node.config.worker_id
        self.peers = {
            int(a["worker"]): a
            for a in answers
            if isinstance(a, dict) and isinstance(a.get("worker"), int) and a["worker"] != mine
        }
        self.refreshed = time.monotonic()

    def merged(self, own: dict[str, Any]) -> dict[str, Any]:
        """``own`` alone without workers; else the whole server's figures: counts
        summed over every worker, the ``KEPT`` fields this worker's, plus
        ``workers`` (one line per worker) and ``workers_age`` (seconds since the
        others' figures were gathered, None before the first time)."""
        if self.server is None:
            return own
        whole = {key: own[key] for key in KEPT}
        everyone = [own, *(self.peers[n] for n in sorted(self.peers))]
        for figures in everyone:
            _add(whole, figures)
        for key in own:
            whole.setdefault(key, own[key])  # a count nobody has (None) stays None
        whole["workers"] = sorted(
            ({key: figures.get(key) for key in _LISTED} for figures in everyone),
            key=lambda line: line["worker"] or 0,
        )
        age = time.monotonic() - self.refreshed if self.refreshed else None
        whole["workers_age"] = None if age is None else round(age, 3)
        return {key: whole[key] for key in [*own, "workers", "workers_age"]}

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
