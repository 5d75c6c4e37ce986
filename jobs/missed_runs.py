"""Missed-run alerts: tell a user whose exports have stopped arriving, once and then weekly, until one arrives.

A user is *overdue* when nothing has been delivered for longer than their
schedule allows: `now - since > allowance(frequency)`, where `since` is their
last delivered export, or when their schedule was switched on if that is later
(or never delivered; schedules older than `Schedule.enabled_at` count from the
account's creation). Users without a schedule that is on (none, switched off, or
paused after a permanent failure, which already sent its own notice) are never
overdue.

The allowance: a schedule's *period* is the longest gap between two of its runs
(`jobs.schedule.PERIODS`: daily 1 day, weekly 7 days, monthly 31 days). A user is
told once a whole period has gone by with nothing delivered *and* a grace of one
more period, capped at 14 days, has passed too: daily 2 days, weekly 14 days,
monthly 45 days. Why not `min(2 periods, 14 days)` read literally: for a monthly
schedule that is 14 days, so every monthly user would be told "nothing delivered"
in the middle of every month, after each successful run. For daily and weekly the
two readings agree; the cap bounds how late the alert comes after the delivery
that should have arrived, not the schedule's own period.

An *episode* is one silence, named by its `since`. Its first alert goes out at
the first check after the user became overdue, then one every `REPEAT` while it
lasts; a delivery moves `since`, which ends the episode (no more mails), and a
later silence is a new episode with a first alert of its own.

Why a row per user, claimed with a conditional UPDATE: every scheduler process
runs this check (`jobs.housekeeping`, every 10 minutes, in the embedded default
and in each `lifeboat scheduler` of a scale-out); the UPDATE that moves the row
to "alerted now" matches for one of them only, and only that one sends. A mail
that could not be sent gives its claim back, so a later check tries again.

What the mail holds: since when nothing was delivered, the last failure's own
words (the run's error, which already says what to do), and the links to fix it.
Never any of the user's contacts, events or notes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jobs.context import JobContext
from jobs.run_lifecycle import add_event
from jobs.schedule import FREQUENCIES, PERIODS
from jobs.user_schedule import next_run_text
from store import Database, ExportRun, MissedRunAlert, RunState, Schedule, User
from store.base import UTCDateTime
from store.runs import KEPT_HERE

log = logging.getLogger("lifeboat.missed_runs")

GRACE_CAP = dt.timedelta(days=14)  # the most an alert waits after the delivery that should have come
REPEAT = dt.timedelta(days=7)  # while an episode lasts, one alert per this long
FIX_PATH = "/settings/destinations"
NO_REASON = (
    "No export has failed with a reason in this time: the scheduled exports did not run. "
    "Lifeboat support can see this too and is looking into it."
)


def allowance(frequency: str) -> dt.timedelta:
    """How long a schedule may go without a delivered export: one period plus a grace of one more, at most 14 days."""
    period = PERIODS[frequency]
    return period + min(period, GRACE_CAP)


ALLOWANCE = {frequency: allowance(frequency) for frequency in FREQUENCIES}


@dataclass(frozen=True)
class Overdue:
    """One overdue user: since when nothing was delivered, and the last failure in words."""

    user_id: int
    email: str
    timezone: str
    frequency: str
    since: dt.datetime  # the episode: the last delivery, or when the schedule was switched on
    delivered_before: bool  # False: nothing was ever delivered on this schedule
    reason: str  # the last failure's own words (what went wrong and what to do), or NO_REASON
    run_id: str | None  # the run whose failure that was, for the history line


@dataclass(frozen=True)
class AlertMail:
    subject: str
    text: str


@dataclass(frozen=True)
class AlertSent:
    user_id: int
    number: int  # 1 for the episode's first alert, 2 for the first weekly repeat, ...
    since: dt.datetime


def overdue_filter(now: dt.datetime) -> tuple[Any, Any]:
    """SQL conditions on `Schedule`/`User` rows: (the schedule's start, "overdue now").

    Shared with the support queue so that both list exactly the same users. The
    cutoff per frequency is `now - allowance`; a user is overdue when their
    schedule started before it and no run of theirs was delivered since it.
    """
    cutoff = case(
        *((Schedule.frequency == name, literal(now - allowed, UTCDateTime())) for name, allowed in ALLOWANCE.items()),
        else_=literal(now - max(ALLOWANCE.values()), UTCDateTime()),
    )
    start = func.coalesce(Schedule.enabled_at, User.created_at)
    recent = exists().where(
        ExportRun.user_id == User.id,
        ExportRun.state == RunState.DELIVERED,
        ExportRun.trigger != KEPT_HERE,  # an export at the command line that sent nothing
        ExportRun.finished_at >= cutoff,
        ExportRun.finished_at >= now - max(ALLOWANCE.values()),  # lets the planner skip older history at once
    )
    overdue = and_(Schedule.enabled.is_(True), User.is_active.is_(True), start < cutoff, ~recent)
    return start, overdue


def last_delivered() -> Any:
    """Each listed user's last delivered run (a correlated subquery: looked up for overdue users only)."""
    return (
        select(func.max(ExportRun.finished_at))
        .where(ExportRun.user_id == User.id, ExportRun.state == RunState.DELIVERED, ExportRun.trigger != KEPT_HERE)
        .scalar_subquery()
    )


def overdue_users(session: Session, *, now: dt.datetime, user_id: int | None = None) -> list[Overdue]:
    """Every overdue user (or only `user_id`, if overdue), with the last failure's words."""
    start, overdue = overdue_filter(now)
    query = (
        select(
            User.id,
            User.email,
            User.timezone,
            Schedule.frequency,
            start.label("start"),
            last_delivered().label("last_ok"),
        )
        .select_from(Schedule)  # only a user with a schedule can be overdue
        .join(User, Schedule.user_id == User.id)
        .where(overdue)
        .order_by(User.id)
    )
    if user_id is not None:
        query = query.where(User.id == user_id)
    rows = session.execute(query).all()
    found = []
    for row in rows:
        started, last_ok = _aware(row.start), _aware(row.last_ok) if row.last_ok is not None else None
        since = max(started, last_ok) if last_ok is not None else started
        found.append((row, since, last_ok is not None and last_ok >= started))
    failures = _last_failures(session, {row.id: since for row, since, _ in found})
    return [
        Overdue(
            user_id=row.id,
            email=row.email,
            timezone=row.timezone or "UTC",
            frequency=row.frequency,
            since=since,
            delivered_before=delivered_before,
            reason=failures.get(row.id, (NO_REASON, None))[0],
            run_id=failures.get(row.id, (NO_REASON, None))[1],
        )
        for row, since, delivered_before in found
    ]


def _last_failures(session: Session, since: dict[int, dt.datetime]) -> dict[int, tuple[str, str | None]]:
    """Each user's newest failed or retrying run since their episode began: (its error, its id)."""
    if not since:
        return {}
    earliest = min(since.values())
    rows = session.execute(
        select(ExportRun.user_id, ExportRun.id, ExportRun.error, ExportRun.created_at)
        .where(
            ExportRun.user_id.in_(list(since)),
            ExportRun.state.in_((RunState.FAILED, RunState.RETRYING)),
            ExportRun.error.is_not(None),
            ExportRun.trigger != KEPT_HERE,  # an operator's copy into --out that failed is no delivery failure
            ExportRun.created_at >= earliest,
        )
        .order_by(ExportRun.created_at.desc(), ExportRun.id.desc())
    ).all()
    found: dict[int, tuple[str, str | None]] = {}
    for row in rows:
        if row.user_id not in found and _aware(row.created_at) >= since[row.user_id]:
            found[row.user_id] = (row.error, row.id)
    return found


def check(ctx: JobContext, *, now: dt.datetime) -> list[AlertSent]:
    """Send every alert that is due now (first of an episode, or a weekly repeat); return those sent.

    Safe to run in several processes at once: each alert is claimed before it is sent.
    """
    with ctx.db.session() as session:
        overdue = overdue_users(session, now=now)
        told = _alert_rows(session, [item.user_id for item in overdue])
    sent = []
    for item in overdue:
        row = told.get(item.user_id)
        if row is not None and row.since == item.since and row.alerted_at and row.alerted_at > now - REPEAT:
            continue  # told about this silence within the week: nothing to claim
        number = claim(ctx.db, item, now=now)
        if number is None:
            continue  # another checker has it
        mail = alert_mail(item, number, base_url=ctx.base_url)
        try:
            emailed = ctx.send_notice(item.email, mail.subject, mail.text) is not False  # False: no mail server
        except Exception as exc:
            log.warning("could not send a missed-run alert to user %s: %s", item.user_id, exc)
            release(ctx.db, item, number, now=now)
            continue
        if emailed:
            note_in_history(ctx.db, item, now=now)
        sent.append(AlertSent(item.user_id, number, item.since))
    if sent:
        log.info("missed-run alerts sent", extra={"alerts": len(sent)})
    return sent


def _alert_rows(session: Session, user_ids: Sequence[int]) -> dict[int, MissedRunAlert]:
    if not user_ids:
        return {}
    rows = session.scalars(select(MissedRunAlert).where(MissedRunAlert.user_id.in_(list(user_ids))))
    return {row.user_id: row for row in rows}


def claim(database: Database, item: Overdue, *, now: dt.datetime) -> int | None:
    """Mark `item`'s alert as sent now if it is due; return its number in the episode, None if not ours to send.

    Due: a new episode (`since` differs), a row never alerted, or a last alert a
    week old. One conditional UPDATE: of two checkers, the second finds the row
    already alerted now and matches nothing.
    """
    dialect = postgresql if database.engine.dialect.name == "postgresql" else sqlite
    with database.session(write=True) as session:
        session.execute(
            dialect.insert(MissedRunAlert)
            .values(user_id=item.user_id, since=item.since, alert_count=0, alerted_at=None, reason=None)
            .on_conflict_do_nothing()
        )
        due = or_(
            MissedRunAlert.since != item.since,
            MissedRunAlert.alerted_at.is_(None),
            MissedRunAlert.alerted_at <= now - REPEAT,
        )
        number = case((MissedRunAlert.since == item.since, MissedRunAlert.alert_count + 1), else_=1)
        result = session.execute(
            update(MissedRunAlert)
            .where(MissedRunAlert.user_id == item.user_id, due)
            .values(since=item.since, alert_count=number, alerted_at=now, reason=item.reason)
            .returning(MissedRunAlert.alert_count)
        )
        return result.scalar_one_or_none()


def release(database: Database, item: Overdue, number: int, *, now: dt.datetime) -> None:
    """Give back a claim whose mail could not be sent, so that the next check tries again."""
    with database.session(write=True) as session:
        session.execute(
            update(MissedRunAlert)
            .where(
                MissedRunAlert.user_id == item.user_id,
                MissedRunAlert.since == item.since,
                MissedRunAlert.alert_count == number,
                MissedRunAlert.alerted_at == now,
            )
            .values(alert_count=number - 1, alerted_at=None)
        )


def note_in_history(database: Database, item: Overdue, *, now: dt.datetime) -> None:
    """A line in the failing run's history (the user's run page and support's): the user was emailed."""
    if item.run_id is None:
        return
    since = _when(item.since, item.timezone)
    with database.session(write=True) as session:
        add_event(
            session,
            item.run_id,
            "alert",
            f"Missed-run alert emailed to the account's address: no export delivered since {since}.",
            at=now,
            level="warning",
        )


def overdue_user(session: Session, user_id: int, *, now: dt.datetime) -> Overdue | None:
    """The user's silence if they are overdue now, as the alert and the support queue see it: for their overview."""
    found = overdue_users(session, now=now, user_id=user_id)
    return found[0] if found else None


@dataclass(frozen=True)
class SilenceWords:
    """The alert's sentences, for the mail and the user's overview alike."""

    headline: str  # "No export delivered since 2026-12-01"
    what: str  # "Your last daily Lifeboat export was delivered on …. Nothing has been delivered since."
    reason: str  # the last failure's own words, or NO_REASON


NOT_REACHING = "Your archives are not reaching your destinations, so your copy is getting older."


def silence_words(item: Overdue) -> SilenceWords:
    """Since when nothing was delivered and why, in the alert's words."""
    local = item.since.astimezone(_zone(item.timezone))
    if item.delivered_before:
        what = f"Your last {item.frequency} Lifeboat export was delivered on {_when(item.since, item.timezone)}."
        silence = "Nothing has been delivered since."
    else:
        what = f"Your {item.frequency} Lifeboat export schedule began on {_when(item.since, item.timezone)}."
        silence = "No export has been delivered since."
    return SilenceWords(f"No export delivered since {local:%Y-%m-%d}", f"{what} {silence}", item.reason)


def alert_mail(item: Overdue, number: int, *, base_url: str) -> AlertMail:
    """The alert's subject and text: since when, the last failure's words, and where to fix it."""
    words = silence_words(item)
    base = base_url.rstrip("/")
    repeat = "This is a reminder: it is still the case. " if number > 1 else ""
    text = (
        "Hello,\n\n"
        f"{repeat}{words.what} {NOT_REACHING}\n\n"
        f"What went wrong most recently: {words.reason}\n\n"
        f"How to fix it: check your destinations at {base}{FIX_PATH} (press Test on each to see what "
        f"works), and your schedule at {base}/settings. Then export now from {base}/ to make sure.\n\n"
        "We will remind you weekly while nothing is delivered, and stop as soon as an export is.\n"
        "Your earlier archives are untouched.\n"
    )
    return AlertMail(f"Lifeboat: {words.headline[0].lower()}{words.headline[1:]}", text)


def _when(moment: dt.datetime, zone: str) -> str:
    return next_run_text(moment, zone if _zone(zone).key == zone else "UTC")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
