"""Users in each kind of trouble the support queue lists, at known times, for the console and staff API tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select

from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.user_schedule import ScheduleChange, save_schedule
from store import Archive, Database, DeliveryAttempt, Destination, ExportRun, RunState, Schedule, User
from store.base import utcnow
from tests.web.run_helpers import ReceiptDelivery, run_now, use_bucket

# Alice's sample data (tests/data/alice.json): none of it may appear on a staff page.
ALICE_CONTENT = ("Dr. Bob Müller Jr.", "+49 30 1234567", "bob.home@example.org", "Met at the 2009 conference")
KEY_ID, SECRET = "AKIAEXAMPLEKEY12WXYZ", "wJalrXUtnFEMI/K7MDENG"
DENIED = "Access Denied: the access key cannot write to s3://my-archives. Check the policy of the key."


@dataclass(frozen=True)
class Seeded:
    alice: int
    failed_run: str
    delivered_run: str
    sha256: str
    by_kind: dict[str, str]  # kind -> the email of the user seeded for it


def _user(db: Database, email: str, *, created: dt.datetime | None = None) -> int:
    with db.session(write=True) as session:
        user = User(email=email, created_at=created or utcnow())
        session.add(user)
        session.flush()
        return user.id


def _run(db: Database, user_id: int, state: str, **columns: object) -> str:
    with db.session(write=True) as session:
        run = ExportRun(user_id=user_id, trigger="schedule", state=state, **columns)
        session.add(run)
        session.flush()
        return run.id


def seed(app: Flask, db: Database, alice_user: int) -> Seeded:
    """One user per kind of trouble, at known times (newest first: alice, bob, dave, erin, george, carol)."""
    now = utcnow()
    use_bucket(app, db, alice_user, ReceiptDelivery())
    delivered, outcome = run_now(app, db, alice_user)
    assert outcome == RunState.DELIVERED
    with db.session(write=True) as session:
        alice = session.get(User, alice_user)
        assert alice is not None
        save_schedule(session, alice, ScheduleChange(frequency="daily"), now=now)
        keyed = add_destination(
            session,
            Registry(dict(app.config)),
            alice,
            "s3",
            "s3://my-archives",
            {"region": "us-east-1", "bucket": "my-archives", "access_key_id": KEY_ID, "secret_access_key": SECRET},
        )
        keyed.status, keyed.status_message, keyed.status_at = "error", DENIED, now - dt.timedelta(hours=5)
        failed = ExportRun(user_id=alice_user, trigger="schedule", state="failed", attempt=5, created_at=now)
        failed.finished_at, failed.error = now, "Delivery failed for good. " + DENIED
        session.add(failed)
        session.flush()
        session.add(
            DeliveryAttempt(
                run_id=failed.id,
                destination_id=keyed.id,
                at=utcnow(),  # after the delivered run's attempt: the latest
                outcome="permanent",
                message=DENIED,
            )
        )
        failed_id = failed.id
        sha = session.scalar(select(Archive.sha256).where(Archive.user_id == alice_user))
        assert sha is not None
    bob = _user(db, "bob@queue.example")
    with db.session(write=True) as session:
        session.add(
            Destination(
                user_id=bob,
                kind="s3",
                label="s3://bob-bucket",
                status="error",
                status_message="The bucket bob-bucket does not exist.",
                status_at=now - dt.timedelta(hours=2),
            )
        )
    carol = _user(db, "carol@queue.example", created=now - dt.timedelta(days=10))
    with db.session(write=True) as session:
        session.add(Schedule(user_id=carol, frequency="daily", enabled=True, next_run_at=now))
    dave = _user(db, "dave@queue.example")
    _run(db, dave, "running", stage="calendars", lease_expires_at=now - dt.timedelta(hours=3))
    erin = _user(db, "erin@queue.example")
    error = "The mail server did not answer. Lifeboat will try again in 5 minutes (attempt 2 of 5)."
    _run(db, erin, "retrying", attempt=2, started_at=now - dt.timedelta(hours=4), error=error)
    george = _user(db, "george@queue.example")
    _run(db, george, "failed", finished_at=now - dt.timedelta(hours=6), error="The calendar store could not be read.")
    # Fine: a daily schedule with a delivery an hour ago, and a queued run that may start now.
    frank = _user(db, "frank@fine.example", created=now - dt.timedelta(days=30))
    with db.session(write=True) as session:
        session.add(Schedule(user_id=frank, frequency="daily", enabled=True, next_run_at=now))
    _run(db, frank, "delivered", finished_at=now - dt.timedelta(hours=1))
    _run(db, frank, "queued", period_key="p2", not_before=now - dt.timedelta(minutes=1))
    return Seeded(
        alice=alice_user,
        failed_run=failed_id,
        delivered_run=delivered,
        sha256=sha,
        by_kind={
            "delivery_failed": "alice@example.com",
            "destination_error": "bob@queue.example",
            "stuck_run": "dave@queue.example",
            "retrying": "erin@queue.example",
            "run_failed": "george@queue.example",
            "missed_run": "carol@queue.example",
        },
    )
