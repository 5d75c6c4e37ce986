"""Export processes for the embedded deployment: child processes that claim and execute runs.

Why processes and not the pool's threads: an export is Python code from end to end
(reading rows, writing cards and events, zipping), so two export threads in one
process share one core through the GIL, and the pages the same process serves
wait behind them. On the 2-core machine the embedded default exported at most
one core's worth (bench/scheduler_scale.py). Each child here is a small worker
of its own, exactly like a Celery worker without the broker: it claims the
oldest due run with the same conditional UPDATE, keeps its lease alive with the
same heartbeat and writes the same rows, so every guarantee of a run (never lost,
never run twice) rests on the database as before:

- a child that dies (killed, out of memory) stops renewing its lease, and the
  parent's next tick requeues the run (`run_lifecycle.requeue_expired`) and starts
  a new child in its place;
- the parent only wakes the children (after "Export now" and every tick); it hands
  them nothing that could be lost with a message.

Children are started with "spawn" (a fresh interpreter): the parent is a
multi-threaded web process, and a forked copy of it could inherit a lock some
other thread held at that instant.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable
from multiprocessing.synchronize import Event

from jobs.context import JobContext

log = logging.getLogger("lifeboat.embedded")
# An idle child looks for due work this often even unwoken (a run whose retry wait ended).
IDLE_SECONDS = 5.0

ContextFactory = Callable[[], JobContext]  # must pickle: a module-level function or a partial of one


def child_main(factory: ContextFactory, wake: Event, stop: Event) -> None:
    """One export process: build the context once, then claim and run due runs until told to stop."""
    from jobs.execute import run_claimed
    from jobs.run_lifecycle import claim_next

    ctx = factory()
    prefix = f"embedded:{socket.gethostname()}:{os.getpid()}"
    counter = 0
    while not stop.is_set():
        wake.wait(IDLE_SECONDS)
        wake.clear()
        while not stop.is_set():
            counter += 1
            owner = f"{prefix}:{counter}"
            run_id = claim_next(ctx.db, owner, now=ctx.clock(), lease=ctx.lease)
            if run_id is None:
                break
            run_claimed(ctx, run_id, owner)
    ctx.db.dispose()


class ExportProcesses:
    """`count` child processes running `child_main`; restarted by `check` when one has died."""

    def __init__(self, factory: ContextFactory, count: int) -> None:
        self.factory = factory
        self._mp = multiprocessing.get_context("spawn")
        self._stop = self._mp.Event()
        self._children: list[tuple[multiprocessing.process.BaseProcess, Event]] = []
        self.count = count

    def start(self) -> None:
        self._children = [self._start_one() for _ in range(self.count)]

    def _start_one(self) -> tuple[multiprocessing.process.BaseProcess, Event]:
        wake = self._mp.Event()
        wake.set()  # look for work at once
        process = self._mp.Process(
            target=child_main, args=(self.factory, wake, self._stop), name="lifeboat-export", daemon=True
        )
        process.start()
        return process, wake

    def wake(self) -> None:
        """Tell every child to look for due runs now."""
        for _process, wake in self._children:
            wake.set()

    def check(self) -> int:
        """Start a new child for every one that has died; how many were restarted.

        The dead child's run, if any, is requeued once its lease runs out (the tick's
        `requeue_expired`) and picked up by whichever child is free then.
        """
        restarted = 0
        for i, (process, _wake) in enumerate(self._children):
            if not process.is_alive() and not self._stop.is_set():
                log.warning("export process died; starting another", extra={"exitcode": process.exitcode})
                self._children[i] = self._start_one()
                restarted += 1
        return restarted

    def pids(self) -> list[int]:
        return [process.pid for process, _wake in self._children if process.pid is not None]

    def shutdown(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Let each child finish the run it is on, then stop; a child still busy after `timeout` is killed.

        A killed child's run is requeued when its lease runs out, like any dead worker's.
        """
        self._stop.set()
        self.wake()
        for process, _wake in self._children:
            process.join(timeout if wait else 0)
            if process.is_alive():
                process.kill()
                process.join(5)
