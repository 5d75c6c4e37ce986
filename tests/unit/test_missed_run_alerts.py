"""Missed-run alerts: a simulated month on a fake clock, through the real dispatcher, runs and housekeeping.

The month is November 2026 in UTC. Every step of it (an hour; two in the month's own
test) the dispatcher ticks, the due
runs execute (their archives really written and verified) and are delivered to a
destination that refuses them on the user's bad days, and housekeeping runs the
missed-run check. Alerts go through the operator's mail server, a loopback
aiosmtpd, so what is asserted is what users would receive.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Sequence
from email.message import EmailMessage

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

import jobs
from delivery.contract import Delivery, Payload, Receipt
from errors import DeliveryError
from jobs import dispatch, housekeeping, missed_runs, run_lifecycle
from jobs.context import JobContext, no_notifier
from jobs.execute import run_claimed
from jobs.support_queue import queue
from jobs.user_schedule import ScheduleChange, save_schedule, switch_off
from store import Database, ExportRun, MissedRunAlert, RunEvent, RunState, User
from store.runs import KEPT_HERE
from tests.servers.smtp import SmtpServer
from tests.web.mail_helpers import BASE_URL, use_mail_server

pytestmark = pytest.mark.server

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # a Sunday
REFUSED = (
    "The bucket “backups” refused the upload (AccessDenied): "
    "check the access keys in Settings → Destinations and press Test."
)


def day(number: int) -> dt.date:
    return dt.date(2026, 11, number)


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


class BadDays(Delivery):
    """A bucket that refuses each user's archives on that user's bad days (UTC dates), accepts them otherwise."""

    kind = "memory"

    def __init__(self, clock: Clock, bad: dict[str, set[dt.date]]) -> None:
        self.clock = clock
        self.bad = bad
        self.delivered: dict[str, list[dt.date]] = defaultdict(list)

    def deliver(self, payload: Payload) -> Receipt:
        today = self.clock().date()
        if today in self.bad.get(payload.user_email, set()):
            raise DeliveryError("AccessDenied", permanent=True, user_message=REFUSED)
        self.delivered[payload.user_email].append(today)
        return Receipt(location="memory://backups", detail="kept in memory")


def failing(first: int, days: int) -> set[dt.date]:
    return {day(first) + dt.timedelta(days=n) for n in range(days)}


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def mail_app(app: Flask, smtp_server: SmtpServer) -> Flask:
    use_mail_server(app, smtp_server)
    jobs.init_app(app)  # the job context again, with the mail server and BASE_URL
    return app


def context(app: Flask, clock: Clock, backend: Delivery) -> JobContext:
    def destinations(_session: Session, _user: User) -> Sequence[tuple[int | None, Delivery]]:
        return [(None, backend)]

    # Failed runs email nobody here (that is the failure notice's own business): only alerts reach the server.
    return dataclasses.replace(
        jobs.get_context(app), clock=clock, destinations=destinations, notify_failure=no_notifier
    )


def add_user(db: Database, email: str, change: ScheduleChange | None, *, at: dt.datetime) -> int:
    """A user (no records: an export of nothing is still an archive) with `change` as their schedule, if any."""
    with db.session(write=True) as session:
        user = User(email=email, created_at=at, timezone="UTC")
        session.add(user)
        session.flush()
        if change is not None:
            save_schedule(session, user, change, now=at)
        return user.id


DAILY = ScheduleChange(frequency="daily", time_of_day="02:00", timezone="UTC")
WEEKLY = ScheduleChange(frequency="weekly", weekday=0, time_of_day="02:00", timezone="UTC")  # Mondays


def hour(ctx: JobContext, clock: Clock, *, hours: int = 1) -> None:
    """One simulated step: what the dispatcher and housekeeping do, then the clock moves on `hours`."""
    now = clock()
    dispatch.initialise_schedules(ctx.db, now=now)
    dispatch.tick(ctx.db, now=now)
    while run_id := run_lifecycle.claim_next(ctx.db, "sim", now=now, lease=ctx.lease):
        run_claimed(ctx, run_id, "sim")
    housekeeping.run_all(ctx, now=now)
    clock.now += dt.timedelta(hours=hours)


def alerts_by_user(server: SmtpServer, sent_on: dict[int, dt.date]) -> dict[str, list[dt.date]]:
    """Who got an alert on which (simulated) day: `sent_on` maps the server's message index to the day."""
    got: dict[str, list[dt.date]] = defaultdict(list)
    for index, received in enumerate(server.received):
        got[received.rcpt_tos[0]].append(sent_on[index])
    return dict(got)


# Two-hour steps: the schedules' 02:00 is a step (runs start at the same moments as hourly), and each alert
# falls on the same day (a check at 02:00 or 04:00 rather than at 02:00 or 03:00), in half the passes.
@pytest.mark.slow  # 360 simulated steps, ~150 real exports: about 4 s
def test_a_simulated_month_sends_each_alert_once_then_weekly_and_none_after_recovery(
    mail_app: Flask, db: Database, clock: Clock, smtp_server: SmtpServer
) -> None:
    bad = {
        "three@example.com": failing(6, 3),  # 6-8 November; delivered again on the 9th
        "ten@example.com": failing(6, 10),  # 6-15; again on the 16th
        "twenty@example.com": failing(6, 20),  # 6-25; again on the 26th
        "weekly@example.com": failing(6, 20),  # misses the Mondays 9, 16 and 23; delivered on the 30th
        "fine@example.com": set(),
    }
    backend = BadDays(clock, bad)
    ctx = context(mail_app, clock, backend)
    for email in bad:
        add_user(db, email, WEEKLY if email.startswith("weekly") else DAILY, at=START)
    add_user(db, "nobody@example.com", None, at=START)  # no schedule: nothing runs, nothing is said
    sent_on: dict[int, dt.date] = {}
    while clock() < START + dt.timedelta(days=30):
        today = clock().date()
        hour(ctx, clock, hours=2)
        for index in range(len(sent_on), len(smtp_server.received)):
            sent_on[index] = today

    # Daily (allowance 2 days): the last delivery on the 5th at 02:xx, told on the 7th, then weekly until recovery.
    # Weekly (allowance 14 days): the last delivery on Monday the 2nd, told on the 16th and the 23rd.
    assert alerts_by_user(smtp_server, sent_on) == {
        "three@example.com": [day(7)],
        "ten@example.com": [day(7), day(14)],
        "twenty@example.com": [day(7), day(14), day(21)],
        "weekly@example.com": [day(16), day(23)],
    }
    assert backend.delivered["twenty@example.com"][-5:] == [day(26), day(27), day(28), day(29), day(30)]
    assert backend.delivered["weekly@example.com"] == [day(2), day(30)]
    with db.session() as session:
        alerts = {row.user_id: row for row in session.scalars(select(MissedRunAlert))}
        emails = {user.id: user.email for user in session.scalars(select(User))}
        assert {emails[uid]: row.alert_count for uid, row in alerts.items()} == {
            "three@example.com": 1,
            "ten@example.com": 2,
            "twenty@example.com": 3,
            "weekly@example.com": 2,
        }
        # Nobody is overdue at the end of the month: every episode ended with a delivery.
        assert missed_runs.overdue_users(session, now=clock()) == []


def test_the_alert_says_since_when_the_last_failure_in_words_and_where_to_fix_it(
    mail_app: Flask, db: Database, clock: Clock, smtp_server: SmtpServer
) -> None:
    backend = BadDays(clock, {"ann@example.com": failing(2, 30)})
    ctx = context(mail_app, clock, backend)
    user_id = add_user(db, "ann@example.com", DAILY, at=START)
    while not smtp_server.received:
        hour(ctx, clock)
    message = smtp_server.received[0].message()
    assert message["Subject"] == "Lifeboat: no export delivered since 2026-11-01"
    text = body(message)
    assert "Your last daily Lifeboat export was delivered on 2026-11-01 0" in text
    assert f"What went wrong most recently: {REFUSED}" in text
    assert f"{BASE_URL}/settings/destinations" in text
    assert clock().date() == day(3)
    # The user's history shows it on the failing run's page.
    with db.session() as session:
        lines = session.scalars(
            select(RunEvent.message)
            .join(ExportRun, ExportRun.id == RunEvent.run_id)
            .where(ExportRun.user_id == user_id, RunEvent.kind == "alert")
        ).all()
    assert len(lines) == 1
    assert lines[0].startswith("Missed-run alert emailed to the account's address: no export delivered since ")
    assert "since 2026-11-01 0" in lines[0]


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_two_checkers_at_once_send_each_alert_once(
    mail_app: Flask, db: Database, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for number in range(12):
        add_user(db, f"user{number}@example.com", DAILY, at=START)
    now = START + dt.timedelta(days=5)  # nothing ever delivered: every one of them is overdue
    base = jobs.get_context(mail_app)
    # Two checkers as two processes would be: each with its own engine on the same database.
    checkers = [dataclasses.replace(base, db=Database(str(db.engine.url))) for _ in range(2)]
    together = threading.Barrier(2)
    sent: list[list[missed_runs.AlertSent]] = [[], []]

    def check(index: int) -> None:
        together.wait(timeout=10)
        sent[index] = missed_runs.check(checkers[index], now=now)

    threads = [threading.Thread(target=check, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for checker in checkers:
        checker.db.dispose()
    recipients = sorted(received.rcpt_tos[0] for received in smtp_server.received)
    assert recipients == sorted(f"user{number}@example.com" for number in range(12))
    assert len(sent[0]) + len(sent[1]) == 12
    # And checked again at once, or an hour later: nothing more until a week has passed.
    assert missed_runs.check(base, now=now) == []
    assert missed_runs.check(base, now=now + dt.timedelta(hours=1)) == []
    assert len(missed_runs.check(base, now=now + dt.timedelta(days=7))) == 12


def test_a_user_without_a_schedule_on_gets_no_alert_however_long_nothing_is_delivered(
    mail_app: Flask, db: Database, smtp_server: SmtpServer
) -> None:
    add_user(db, "never@example.com", None, at=START)
    off = add_user(db, "off@example.com", DAILY, at=START)
    with db.session(write=True) as session:
        user = session.get(User, off)
        assert user is not None and switch_off(session, user)
    later = START + dt.timedelta(days=60)
    assert missed_runs.check(jobs.get_context(mail_app), now=later) == []
    assert smtp_server.received == []


def test_a_schedule_switched_on_again_is_measured_from_then_not_from_the_last_delivery(
    mail_app: Flask, db: Database, smtp_server: SmtpServer
) -> None:
    user_id = add_user(db, "back@example.com", DAILY, at=START)
    with db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        switch_off(session, user)
        save_schedule(session, user, ScheduleChange(), now=START + dt.timedelta(days=20))
    ctx = jobs.get_context(mail_app)
    assert missed_runs.check(ctx, now=START + dt.timedelta(days=21)) == []
    assert [a.number for a in missed_runs.check(ctx, now=START + dt.timedelta(days=22, minutes=1))] == [1]


def test_a_mail_that_could_not_be_sent_is_tried_again_at_the_next_check(mail_app: Flask, db: Database) -> None:
    add_user(db, "retry@example.com", DAILY, at=START)
    now = START + dt.timedelta(days=3)
    attempts: list[str] = []

    def down(to: str, _subject: str, _text: str) -> None:
        attempts.append(to)
        raise OSError("connection refused")

    base = jobs.get_context(mail_app)
    assert missed_runs.check(dataclasses.replace(base, send_notice=down), now=now) == []
    assert attempts == ["retry@example.com"]
    assert [a.number for a in missed_runs.check(base, now=now + dt.timedelta(minutes=10))] == [1]


def test_the_support_queue_lists_overdue_users_with_since_when_and_the_last_failure(
    mail_app: Flask, db: Database
) -> None:
    late = add_user(db, "late@example.com", DAILY, at=START)
    add_user(db, "new@example.com", DAILY, at=START + dt.timedelta(days=4))  # within its allowance
    add_user(db, "weekly@example.com", WEEKLY, at=START)  # 14 days allowed
    delivered = START + dt.timedelta(days=1, hours=2)
    with db.session(write=True) as session:
        session.add(ExportRun(user_id=late, trigger="schedule", state=RunState.DELIVERED, finished_at=delivered))
        session.add(
            ExportRun(
                user_id=late,
                trigger="schedule",
                period_key="daily:2026-11-03",
                state=RunState.FAILED,
                created_at=START + dt.timedelta(days=2),
                finished_at=START + dt.timedelta(days=2, minutes=5),
                error=REFUSED,
            )
        )
    now = START + dt.timedelta(days=5)
    with db.session() as session:
        items = queue(session, now=now, kinds=("missed_run",)).items
    assert [(item.email, item.at) for item in items] == [("late@example.com", delivered)]
    assert items[0].message == f"No delivered export on a daily schedule since this time. Last failure: {REFUSED}"


def test_an_export_at_the_command_line_that_sent_nothing_is_no_delivery_for_the_alerts(db: Database) -> None:
    """`lifeboat export` without --deliver is a run History lists, but the user's destinations got nothing."""
    user_id = add_user(db, "local@example.com", DAILY, at=START)
    now = START + dt.timedelta(days=5)
    with db.session(write=True) as session:
        session.add(ExportRun(user_id=user_id, trigger=KEPT_HERE, state=RunState.DELIVERED, finished_at=now))
    with db.session() as session:
        assert [o.user_id for o in missed_runs.overdue_users(session, now=now)] == [user_id]
        assert [i.user_id for i in queue(session, now=now, kinds=("missed_run",)).items] == [user_id]
    with db.session(write=True) as session:  # with --deliver it is one
        session.add(ExportRun(user_id=user_id, trigger="cli", state=RunState.DELIVERED, finished_at=now))
    with db.session() as session:
        assert missed_runs.overdue_users(session, now=now) == []
