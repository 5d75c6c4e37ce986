"""The standalone dispatcher process (`lifeboat scheduler`).

APScheduler is only the ticker here, in one process with fixed job ids; the
database decides what is due and who runs it, so several dispatchers can run
side by side for availability (APScheduler's own job stores cannot be shared
between processes, and are not used).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from jobs import bulk_resend, dispatch, get_context, housekeeping, run_lifecycle

log = logging.getLogger("lifeboat.dispatcher")


@dataclass(frozen=True)
class TickReport:
    initialised: int
    created: int
    requeued: int
    handed_out: int

    def describe(self) -> str:
        return (
            f"tick: {self.created} run(s) queued from schedules, {self.requeued} dead run(s) requeued, "
            f"{self.handed_out} run(s) handed to workers, {self.initialised} schedule(s) initialised"
        )


class Dispatcher:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.ctx = get_context(app)
        self.celery = bool(app.config["CELERY_BROKER_URL"])
        self._local = None
        if not self.celery:
            from jobs.embedded import EmbeddedRuntime

            self._local = EmbeddedRuntime(self.ctx, workers=app.config["EMBEDDED_WORKERS"])

    def tick_once(self) -> TickReport:
        now = self.ctx.clock()
        initialised = dispatch.initialise_schedules(self.ctx.db, now=now)
        created = dispatch.tick(self.ctx.db, now=now).created
        requeued = run_lifecycle.requeue_expired(self.ctx.db, now=now)
        if self.celery:
            from jobs.worker import dispatch_queued

            handed = dispatch_queued(self.ctx)
        else:
            assert self._local is not None
            self._local.fill()
            handed = 0
        bulk_resend.continue_unattended(self.app)  # a bulk re-send whose runner (a web process) died
        report = TickReport(initialised, len(created), len(requeued), handed)
        if report.created or report.requeued or report.handed_out:
            log.info(report.describe())
        return report

    def run_forever(self) -> None:
        scheduler = BlockingScheduler(timezone="UTC")
        common = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        seconds = self.app.config["TICK_SECONDS"]
        scheduler.add_job(self._safe_tick, "interval", seconds=seconds, id="lifeboat-dispatch", **common)
        scheduler.add_job(self._housekeep, "interval", minutes=10, id="lifeboat-housekeeping", **common)

        def stop(signum: int, _frame: object) -> None:
            log.info("stopping dispatcher", extra={"signal": signum})
            threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        housekeeping.remove_abandoned(self.ctx.files)  # what exports killed before this start left
        self._safe_tick()
        scheduler.start()
        if self._local is not None:
            self._local.shutdown(wait=True)

    def _safe_tick(self) -> None:
        try:
            with self.app.app_context():
                self.tick_once()
        except Exception:
            log.exception("dispatch tick failed")

    def _housekeep(self) -> None:
        try:
            housekeeping.run_all(self.ctx, now=self.ctx.clock(), keep_days=self.app.config["ARCHIVE_RETENTION_DAYS"])
        except Exception:
            log.exception("housekeeping failed")
