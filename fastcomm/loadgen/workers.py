"""Running a scenario in this process or spread over worker processes.

With one worker the scenario runs on a uvloop loop in this process. With
several, each worker is a ``spawn``-ed process; they meet at every phase on
a :class:`multiprocessing.Barrier` that the coordinator (this process) also
joins, so it can probe the server between phases. A worker that fails breaks
the barrier so that nobody waits forever; its error is reported, not raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.synchronize
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import uvloop

from fastcomm.loadgen.progress import Progress
from fastcomm.loadgen.spec import Scenario, WorkerResult, WorkerSpec

__all__ = ["run_workers"]

Hook = Callable[[str], None]
_BARRIER_TIMEOUT = 900.0  # seconds a phase may take (10,000 handshakes on a slow box)


def _scenario(name: str) -> Scenario:
    from fastcomm.loadgen.scenarios import SCENARIOS

    return SCENARIOS[name]


class _LocalSync:
    """Sync of a single in-process worker: phases only run the coordinator's hook."""

    def __init__(self, hook: Hook, progress: Progress | None) -> None:
        self.hook = hook
        self.progress = progress
        self.ticker: asyncio.Task[None] | None = None

    async def phase(self, name: str) -> None:
        self.hook(name)

    def watch(self, done: Callable[[], int]) -> None:
        progress = self.progress
        if progress is None:
            return

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.25)
                progress.show(done())

        self.ticker = asyncio.get_running_loop().create_task(tick())


class _ProcessSync:
    """Sync of a worker process: a shared barrier and a shared progress slot."""

    def __init__(self, barrier: Any, slots: Any, index: int) -> None:
        self.barrier = barrier
        self.slots = slots
        self.index = index

    async def phase(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.barrier.wait, _BARRIER_TIMEOUT)

    def watch(self, done: Callable[[], int]) -> None:
        async def tick() -> None:
            while True:
                self.slots[self.index] = done()
                await asyncio.sleep(0.2)

        asyncio.get_running_loop().create_task(tick())


def _failed(exc: BaseException) -> WorkerResult:
    return WorkerResult(errors=[f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]])


async def _run_local(spec: WorkerSpec, sync: _LocalSync) -> WorkerResult:
    try:
        return await _scenario(spec.scenario).worker(spec, sync)
    finally:
        if sync.ticker is not None:
            sync.ticker.cancel()


def _child(raw_spec: bytes, barrier: Any, slots: Any, results: Any) -> None:
    """Entry point of a worker process."""
    spec = msgspec.msgpack.decode(raw_spec, type=WorkerSpec)
    sync = _ProcessSync(barrier, slots, spec.index)
    try:
        result = uvloop.run(_scenario(spec.scenario).worker(spec, sync))
    except BaseException as exc:  # noqa: BLE001 - reported to the coordinator
        barrier.abort()
        result = _failed(exc)
    results.put((spec.index, msgspec.msgpack.encode(result)))


def run_workers(
    specs: list[WorkerSpec], hook: Hook, progress: Progress | None
) -> list[WorkerResult]:
    """Run every spec (one per worker) and return their results, in order.

    ``hook(phase)`` runs in the coordinator once all workers reached each
    phase of the scenario (before they continue, for a single worker).
    """
    if len(specs) == 1:
        sync = _LocalSync(hook, progress)
        try:
            return [uvloop.run(_run_local(specs[0], sync))]
        except Exception as exc:  # noqa: BLE001 - reported like a worker's failure
            return [_failed(exc)]
    return _run_processes(specs, hook, progress)


def _run_processes(
    specs: list[WorkerSpec], hook: Hook, progress: Progress | None
) -> list[WorkerResult]:
    ctx = multiprocessing.get_context("spawn")
    phases = _scenario(specs[0].scenario).phases
    barrier = ctx.Barrier(len(specs) + 1)
    slots = ctx.Array("q", len(specs), lock=False)
    results: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=_child,
            args=(msgspec.msgpack.encode(spec), barrier, slots, results),
            name=f"fastcomm-bench-{spec.index}",
            daemon=True,
        )
        for spec in specs
    ]
    for proc in procs:
        proc.start()
    coordinator = threading.Thread(target=_coordinate, args=(barrier, phases, hook), daemon=True)
    coordinator.start()
    collected: dict[int, WorkerResult] = {}
    dead: dict[int, float] = {}
    try:
        while len(collected) < len(specs):
            if progress is not None:
                progress.show(sum(slots))
            try:
                index, raw = results.get(timeout=0.2)
            except queue.Empty:
                _check_alive(procs, collected, dead, barrier)
                continue
            collected[index] = msgspec.msgpack.decode(raw, type=WorkerResult)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    return [collected[spec.index] for spec in specs]


def _coordinate(barrier: Any, phases: tuple[str, ...], hook: Hook) -> None:
    for name in phases:
        try:
            barrier.wait(_BARRIER_TIMEOUT)
        except threading.BrokenBarrierError:
            return
        hook(name)


def _check_alive(
    procs: list[Any], collected: Mapping[int, Any], dead: dict[int, float], barrier: Any
) -> None:
    """A worker that exited without reporting (killed, crashed) fails the run.

    Its result may still be in the queue's pipe, so it gets a grace period.
    """
    now = time.monotonic()
    for index, proc in enumerate(procs):
        if index in collected or proc.is_alive():
            continue
        if now - dead.setdefault(index, now) < 3.0:
            continue
        with contextlib.suppress(Exception):
            barrier.abort()
        raise RuntimeError(f"load generator worker {index} died (exit code {proc.exitcode})")
