"""An outage repaired: 200 users, six hours of failed deliveries, one bulk re-send killed half-way and restarted.

Why a subprocess and SIGKILL: "restart-safe" means a worker that dies without
cleaning up (no `finally`, no rollback of its own) loses nothing and repeats
nothing when the same job is started again. The real command does the work;
the queued re-sends are then delivered by the real executor, and what each
user received is counted at the destination, not read back from the database.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from delivery.contract import Delivery, Payload, Receipt
from delivery.memory import MemoryDelivery
from jobs import bulk_resend, get_context
from jobs.execute import execute_run
from store import Archive, AuditEvent, Database, DeliveryAttempt, Destination, ExportRun, RunState, User
from tests.delivery.bulk_seed import OUTAGE, staff_member
from tests.delivery.test_support_actions import exported_archive

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WINDOW = dt.timedelta(hours=6)
USERS, AFFECTED = 200, 120
STAFF = "helper@lifeboat.example"
RATE = 3000  # users a minute: 120 users take ~3 s with their writes, so the kill lands half-way


class CountingDelivery(Delivery):
    """A memory destination that also counts every delivery it is asked for, per user."""

    kind = "memory"

    def __init__(self) -> None:
        self.store = MemoryDelivery("outage")
        self.per_user: Counter[str] = Counter()

    def deliver(self, payload: Payload) -> Receipt:
        self.per_user[payload.user_email] += 1
        return self.store.deliver(payload)


def seed_outage(app: Flask) -> tuple[list[int], list[int]]:
    """200 users with a destination and a verified archive of their own (hard links of one real archive).

    The first 120 failed (twice, a retry) inside the window; of the other 80,
    half delivered inside it and half failed only before or after it.
    Returns (affected ids, unaffected ids).
    """
    ctx = get_context(app)
    with ctx.db.session(write=True) as session:
        template_user = User(email="template@example.com")
        session.add(template_user)
        session.flush()
        template_id = template_user.id
    template = exported_archive(app, template_id)
    archive_dir = Path(app.config["ARCHIVE_DIR"])
    affected: list[int] = []
    unaffected: list[int] = []
    with ctx.db.session(write=True) as session:
        users = [User(email=f"user{i:03d}@outage.example") for i in range(USERS)]
        session.add_all(users)
        session.flush()
        for i, user in enumerate(users):
            destination = Destination(user_id=user.id, kind="s3", label="my bucket")
            destination.settings = {"endpoint_url": "https://minio.example", "bucket": "b"}
            relpath = f"outage/{user.id}/{template.filename}"
            (archive_dir / relpath).parent.mkdir(parents=True, exist_ok=True)
            os.link(archive_dir / template.relpath, archive_dir / relpath)
            made = OUTAGE - dt.timedelta(days=1)
            session.add_all(
                [
                    destination,
                    Archive(
                        user_id=user.id,
                        filename=f"user{i:03d}-{template.filename}",
                        relpath=relpath,
                        sha256=template.sha256,
                        size=template.size,
                        created_at=made,
                        verified_at=made,
                    ),
                ]
            )
            session.flush()
            if i < AFFECTED:
                failed_at = OUTAGE + WINDOW * (i / AFFECTED)
                outcomes = [(failed_at, "transient"), (failed_at + dt.timedelta(minutes=5), "transient")]
                affected.append(user.id)
            elif i < AFFECTED + (USERS - AFFECTED) // 2:
                outcomes = [(OUTAGE + dt.timedelta(hours=2), "delivered")]
                unaffected.append(user.id)
            else:  # failed, but outside the window: the hour before, or right at its (exclusive) end
                outcomes = [(OUTAGE - dt.timedelta(hours=1) if i % 2 else OUTAGE + WINDOW, "transient")]
                unaffected.append(user.id)
            for at, outcome in outcomes:
                state = RunState.DELIVERED if outcome == "delivered" else RunState.FAILED
                run = ExportRun(user_id=user.id, trigger="schedule", state=state, finished_at=at)
                session.add(run)
                session.flush()
                session.add(
                    DeliveryAttempt(
                        run_id=run.id, destination_id=destination.id, at=at, outcome=outcome, message="Outage"
                    )
                )
    return affected, unaffected


def window_args() -> list[str]:
    return ["--since", OUTAGE.isoformat(), "--until", (OUTAGE + WINDOW).isoformat(), "--as", STAFF]


def command(app: Flask, *args: str) -> subprocess.Popen[str]:
    """`flask --app app support bulk-resend …` in a process of its own, on the test's database and archives."""
    env = {
        **os.environ,
        "LIFEBOAT_DATABASE_URL": app.config["DATABASE_URL"],
        "LIFEBOAT_ARCHIVE_DIR": app.config["ARCHIVE_DIR"],
        "LIFEBOAT_INSTANCE_DIR": app.instance_path,
        "LIFEBOAT_SECRET_KEY": app.config["SECRET_KEY"],
        "PYTHONUNBUFFERED": "1",
    }
    flask = [sys.executable, "-m", "flask", "--app", "app", "support", "bulk-resend", *args]
    return subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def job_id(db: Database) -> str | None:
    with db.session() as session:
        key = session.scalar(select(AuditEvent.request_key).where(AuditEvent.action == bulk_resend.STARTED))
        return key.removeprefix("bulk:") if key else None


def done(db: Database, job: str) -> int:
    with db.session() as session:
        return bulk_resend.status(session, job).done


def wait_for(check: Callable[[], bool], what: str, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_an_outage_bulk_resend_killed_half_way_re_delivers_once_to_each_affected_user_and_never_to_others(
    app: Flask, db: Database, runner: FlaskCliRunner
) -> None:
    staff_member(db, STAFF)
    affected, unaffected = seed_outage(app)

    dry = runner.invoke(args=["support", "bulk-resend", *window_args(), "--reason", "Outage", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[0].startswith(f"Dry run: {AFFECTED} users would get their latest archive again")
    assert lines[1].startswith("  user000@outage.example  failed ")
    assert len(lines) == 1 + bulk_resend.SAMPLE_SIZE + 1 and lines[-1] == f"  … and {AFFECTED - 20} more."
    with db.session() as session:
        assert session.scalar(select(func.count(ExportRun.id)).where(ExportRun.trigger == "support")) == 0
        assert list(session.scalars(select(AuditEvent.action))) == [bulk_resend.DRY_RUN]

    first = command(app, *window_args(), "--reason", "Outage of Dec 5", "--per-minute", str(RATE))
    try:
        wait_for(lambda: job_id(db) is not None, "the job to start")
        job = job_id(db)
        assert job is not None
        wait_for(lambda: done(db, job) >= AFFECTED // 2, "half the users")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate(timeout=10)  # reaps it and closes its pipe
    assert first.returncode == -signal.SIGKILL
    killed_at = done(db, job)
    assert AFFECTED // 2 <= killed_at < AFFECTED, "the kill was meant to land half-way"

    second = command(app, "--job", job, "--as", STAFF)
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert output.splitlines()[-1] == f"Bulk re-send {job}: {AFFECTED} of {AFFECTED} users done " + (
        f"({AFFECTED} re-sent, 0 skipped), finished."
    )

    ctx = get_context(app)
    backend = CountingDelivery()

    def destinations(session: Session, user: User) -> Sequence[tuple[int | None, Delivery]]:
        """Each user's own destination row (so attempts are recorded against it), delivering to `backend`."""
        return [(session.scalar(select(Destination.id).where(Destination.user_id == user.id)), backend)]

    ctx.destinations = destinations
    ctx.notify_failure = lambda _user, _run: None
    with db.session() as session:
        runs = list(session.execute(select(ExportRun.id, ExportRun.user_id).where(ExportRun.trigger == "support")))
        keys = list(session.scalars(select(AuditEvent.request_key).where(AuditEvent.request_key.like(f"bulk:{job}:%"))))
        final = bulk_resend.status(session, job)
    for run_id, _user in runs:
        assert execute_run(ctx, run_id, "w") == RunState.DELIVERED

    assert sorted(user for _run, user in runs) == sorted(affected)  # one re-send run each, nobody else
    assert len(keys) == len(set(keys)) == AFFECTED
    assert set(keys) == {f"bulk:{job}:{user}" for user in affected}
    assert (final.done, final.count, final.sent, final.skipped, final.state) == (
        AFFECTED,
        AFFECTED,
        AFFECTED,
        0,
        "finished",
    )
    emails = user_emails(db)
    assert backend.per_user == Counter({emails[user]: 1 for user in affected})
    assert not {emails[user] for user in unaffected} & set(backend.per_user)
    with db.session() as session:
        delivered = session.scalars(
            select(ExportRun.user_id)
            .join(DeliveryAttempt, DeliveryAttempt.run_id == ExportRun.id)
            .where(ExportRun.trigger == "support", DeliveryAttempt.outcome == "delivered")
        )
        assert sorted(delivered) == sorted(affected)


def user_emails(db: Database) -> dict[int, str]:
    with db.session() as session:
        return {user_id: email for user_id, email in session.execute(select(User.id, User.email))}
