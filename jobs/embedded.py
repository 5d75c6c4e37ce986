"""The embedded deployment: scheduler and a bounded export pool inside the web process.

APScheduler runs two interval jobs with fixed ids (`replace_existing`): the
dispatch tick and housekeeping. Exports run in a small thread pool, or, given a
context factory, in as many child processes (`jobs.export_processes`: one core
each instead of one core between them). Starting
two such processes by mistake is harmless: every schedule claim and run claim
is a conditional UPDATE in the database, so each run executes once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from apscheduler.schedulers.background import BackgroundScheduler

from jobs import dispatch, housekeeping, run_lifecycle
from jobs.context import JobContext
from jobs.execute import run_claimed
from jobs.export_processes import ContextFactory, ExportProcesses

log = logging.getLogger("lifeboat.embedded")


class EmbeddedRuntime:
    def __init__(
        self,
        ctx: JobContext,
        *,
        workers: int = 2,
        tick_seconds: float = 10.0,
        also_each_tick: Callable[[], object] = lambda: None,
        processes: ContextFactory | None = None,
    ) -> None:
        """`processes`: builds a run's context in a child process; given, exports run in `workers` children."""
        self.ctx = ctx
        self.also_each_tick = also_each_tick  # e.g. continue a bulk re-send whose runner died
        self.workers = max(1, workers)
        self.tick_seconds = tick_seconds
        self.owner_prefix = f"embedded:{socket.gethostname()}:{os.getpid()}"
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lifeboat-export")
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._busy = 0
        self._lock = threading.Lock()
        self._counter = 0
        self.children = ExportProcesses(processes, self.workers) if processes is not None else None

    def start(self) -> None:
        housekeeping.remove_abandoned(self.ctx.files)  # what exports killed before this start left
        # misfire_grace_time=None: a tick missed while the process was busy still runs
        # (APScheduler's default of 1 s silently drops it); coalesce: once, not per miss.
        common = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        self.scheduler.add_job(self.tick, "interval", seconds=self.tick_seconds, id="lifeboat-dispatch", **common)
        self.scheduler.add_job(self.housekeep, "interval", minutes=10, id="lifeboat-housekeeping", **common)
        if self.children is not None:
            self.children.start()
        self.scheduler.start()
        log.info("embedded scheduler started", extra={"workers": self.workers})

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        if self.children is not None:
            self.children.shutdown(wait=wait)
        self.pool.shutdown(wait=wait)

    def tick(self) -> None:
        now = self.ctx.clock()
        dispatch.initialise_schedules(self.ctx.db, now=now)
        dispatch.tick(self.ctx.db, now=now)
        run_lifecycle.requeue_expired(self.ctx.db, now=now)
        if self.children is not None:
            self.children.check()
        self.fill()
        self.also_each_tick()

    def housekeep(self) -> None:
        housekeeping.run_all(self.ctx, now=self.ctx.clock())

    def kick(self) -> None:
        """Start queued work now (after "export now") instead of at the next tick."""
        self.fill()

    def fill(self) -> None:
        if self.children is not None:  # the children claim for themselves
            self.children.wake()
            return
        while True:
            with self._lock:
                if self._busy >= self.workers:
                    return
                self._counter += 1
                owner = f"{self.owner_prefix}:{self._counter}"
            run_id = run_lifecycle.claim_next(self.ctx.db, owner, now=self.ctx.clock(), lease=self.ctx.lease)
            if run_id is None:
                return
            with self._lock:
                self._busy += 1
            self.pool.submit(self._execute, run_id, owner)

    def _execute(self, run_id: str, owner: str) -> None:
        try:
            run_claimed(self.ctx, run_id, owner)
        finally:
            with self._lock:
                self._busy -= 1
        self.fill()  # pick up the next queued run without waiting for a tick
