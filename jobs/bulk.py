"""`export-all`: a fresh verified archive for every active user, in parallel and resumable."""

from __future__ import annotations

import datetime as dt
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import click
from flask import Flask
from sqlalchemy import select

from jobs import get_context, run_lifecycle
from jobs.context import JobContext
from jobs.execute import execute_run
from store import ExportRun, RunState, User
from store.freshness import users_without_fresh_archive


@dataclass
class BulkOutcome:
    total: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.total:
            return "Every active user already has a fresh verified archive."
        return f"{len(self.delivered):,} of {self.total:,} user(s) now have a fresh verified archive."


def export_all(app: Flask, *, workers: int, max_age_hours: int) -> BulkOutcome:
    ctx = get_context(app)
    emails = users_without_fresh_archive(ctx.db, dt.timedelta(hours=max_age_hours))
    outcome = BulkOutcome(total=len(emails))
    if not emails:
        return outcome
    run_ids: dict[str, str] = {}
    with ctx.db.session(write=True) as session:
        for user in session.scalars(select(User).where(User.email.in_(emails))):
            run, _ = run_lifecycle.request_run(session, user.id, "upgrade", now=ctx.clock())
            run_ids[run.id] = user.email
    owner = f"export-all:{os.getpid()}"
    with (
        click.progressbar(length=len(run_ids), label="Exporting", file=sys.stderr) as bar,
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
    ):
        futures = {pool.submit(_run, ctx, run_id, f"{owner}:{run_id}"): run_id for run_id in run_ids}
        for future in as_completed(futures):
            run_id = futures[future]
            (outcome.delivered if future.result() == RunState.DELIVERED else outcome.failed).append(run_ids[run_id])
            bar.update(1)
    return outcome


def _run(ctx: JobContext, run_id: str, owner: str) -> str:
    outcome = execute_run(ctx, run_id, owner)
    if outcome == "skipped":  # someone else (the dispatcher's pool) is running it: wait for its end
        with ctx.db.session() as session:
            run = session.get(ExportRun, run_id)
            return run.state if run else "lost"
    return outcome
