"""What a missed-run alert leaves for the user to see: a line on the failing run's page, and no content in the mail."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

import jobs
from account.records import Account
from jobs import missed_runs, support_queue
from jobs.user_schedule import ScheduleChange, save_schedule
from store import Database, ExportRun, RunState, User
from store.base import utcnow

REFUSED = "The bucket “backups” refused the upload (AccessDenied): check the access keys in Settings → Destinations."


def refused_daily_run(db: Database, user_id: int, start: dt.datetime, period_key: str, *, timezone: str = "") -> str:
    """A daily schedule begun at `start`, and its scheduled run two days later that the bucket refused: the run's id."""
    with db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        if timezone:
            user.timezone = timezone
        save_schedule(session, user, ScheduleChange(frequency="daily"), now=start)
        run = ExportRun(
            user_id=user_id,
            trigger="schedule",
            period_key=period_key,
            state=RunState.FAILED,
            created_at=start + dt.timedelta(days=2),
            finished_at=start + dt.timedelta(days=2, minutes=3),
            error=REFUSED,
        )
        session.add(run)
        session.flush()
        return run.id


def test_the_failing_runs_page_says_an_alert_was_emailed_and_the_mail_holds_none_of_the_users_records(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, alice: Account
) -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    run_id = refused_daily_run(db, alice_user, start, "daily:2026-11-03")
    mails: list[tuple[str, str, str]] = []
    ctx = dataclasses.replace(jobs.get_context(app), send_notice=lambda *mail: mails.append(mail))
    assert [a.number for a in missed_runs.check(ctx, now=start + dt.timedelta(days=3))] == [1]

    page = signed_in.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Missed-run alert emailed to the account&#39;s address: no export delivered since 2026-11-01" in page
    [(to, subject, text)] = mails
    assert to == "alice@example.com" and REFUSED in text
    private = [c.formatted_name for c in alice.contacts if c.formatted_name]
    private += [n.title for n in alice.notes] + [e.summary for c in alice.calendars for e in c.events if e.summary]
    assert private, "alice's sample has records to look for"
    assert not [value for value in private if value in subject + text]


def test_the_overview_says_what_the_missed_run_alert_says_while_support_lists_the_user_and_stops_after_a_delivery(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    now = utcnow()
    start = now - dt.timedelta(days=7)
    refused_daily_run(db, alice_user, start, "daily:failed", timezone="UTC")
    with db.session() as session:
        queued = support_queue.queue(session, now=utcnow(), kinds=("missed_run",)).items
        [overdue] = missed_runs.overdue_users(session, now=utcnow())
    assert [i.user_id for i in queued] == [alice_user]  # support sees it
    mail = missed_runs.alert_mail(overdue, 1, base_url="http://localhost")

    page = re.sub(r"\s+", " ", signed_in.get("/").get_data(as_text=True))
    assert 'id="missed-run-warning"' in page
    warning = page[page.index('id="missed-run-warning"') : page.index('aria-labelledby="exports-title"')]
    assert f"No export delivered since {start:%Y-%m-%d}" in warning  # the mail's subject
    what = mail.text.split("\n\n")[1].split(" Your archives")[0]  # the mail's own sentence
    assert what.startswith(f"Your daily Lifeboat export schedule began on {start:%Y-%m-%d}") and what in warning
    assert "No export has been delivered since. Your archives are not reaching your destinations" in warning
    assert str(escape(REFUSED)) in warning  # the last failure's own words, as in the mail
    assert 'href="/settings/destinations"' in warning and 'href="/settings"' in warning

    with db.session(write=True) as session:
        session.add(
            ExportRun(
                user_id=alice_user, trigger="schedule", period_key="daily:ok", state=RunState.DELIVERED,
                created_at=utcnow(), finished_at=utcnow(),
            )
        )  # fmt: skip
    assert 'id="missed-run-warning"' not in signed_in.get("/").get_data(as_text=True)
    with db.session() as session:
        assert support_queue.queue(session, now=utcnow(), kinds=("missed_run",)).items == []
