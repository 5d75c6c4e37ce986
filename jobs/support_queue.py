"""The support queue: which users need attention now, and why, newest first.

Why one SQL statement (a UNION ALL of one SELECT per kind) rather than a loop
over users: with 100k users the queue must cost a few indexed scans and one
sort, not a query per user. Each branch yields the same columns (kind, user,
when, message, run, destination), so filtering by kind is leaving branches
out, and paging is LIMIT/OFFSET on the union.

The kinds:
- `delivery_failed`: the user's latest delivery attempt did not deliver;
- `run_failed`: the user's latest finished run failed before any delivery was tried;
- `destination_error`: a destination whose last delivery or test failed;
- `missed_run`: a schedule that is on, and no delivered run for two of its periods;
- `stuck_run`: a running run whose lease expired, or a queued one long past its start time;
- `retrying`: a run waiting to try again after a transient failure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from store import DeliveryAttempt, Destination, ExportRun, Schedule, User

KINDS = ("delivery_failed", "run_failed", "destination_error", "missed_run", "stuck_run", "retrying")
KIND_WORDS = {
    "delivery_failed": "Last delivery failed",
    "run_failed": "Last export failed",
    "destination_error": "Destination in error",
    "missed_run": "Missed scheduled exports",
    "stuck_run": "Export stuck",
    "retrying": "Export retrying",
}
# A schedule may go this long without a delivered run before the queue lists it: two of its periods.
ALLOWANCE = {"daily": dt.timedelta(days=2), "weekly": dt.timedelta(days=14), "monthly": dt.timedelta(days=62)}
# A queued run not picked up this long after it could start is stuck (workers down, or its message lost).
QUEUED_TOO_LONG = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class QueueItem:
    """One reason one user needs attention."""

    kind: str
    user_id: int
    email: str
    at: dt.datetime
    message: str
    run_id: str | None
    destination_id: int | None

    @property
    def kind_label(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int


def queue(
    session: Session, *, now: dt.datetime, kinds: tuple[str, ...] = KINDS, limit: int = 50, offset: int = 0
) -> QueuePage:
    """The items of `kinds` (all by default), newest first: `limit` of them from `offset`, and how many in all."""
    branches = [_BRANCHES[kind](now) for kind in KINDS if kind in kinds]
    if not branches:
        return QueuePage([], 0)
    every = union_all(*branches).subquery("queue")
    total = session.scalar(select(func.count()).select_from(every)) or 0
    rows = session.execute(
        select(every).order_by(every.c.at.desc(), every.c.kind, every.c.user_id).limit(limit).offset(offset)
    )
    items = [
        QueueItem(
            kind=row.kind,
            user_id=row.user_id,
            email=row.email,
            at=_aware(row.at),
            message=row.message or "",
            run_id=row.run_id,
            destination_id=row.destination_id,
        )
        for row in rows
    ]
    return QueuePage(items, total)


def _aware(value: Any) -> dt.datetime:
    """A union's column loses its UTCDateTime type on SQLite (a naive datetime, or text): make it aware UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _columns(kind: str, at: Any, message: Any, run_id: Any, destination_id: Any) -> list[Any]:
    return [
        literal(kind).label("kind"),
        User.id.label("user_id"),
        User.email.label("email"),
        at.label("at"),
        message.label("message"),
        run_id.label("run_id"),
        destination_id.label("destination_id"),
    ]


def _no_run() -> Any:
    return null().cast(ExportRun.id.type)


def _no_destination() -> Any:
    return null().cast(Destination.id.type)


def _delivery_failed(now: dt.datetime) -> Select[Any]:
    """Each user's newest delivery attempt (a window over attempts joined to runs), where it did not deliver."""
    ranked = (
        select(
            DeliveryAttempt.id,
            DeliveryAttempt.run_id,
            DeliveryAttempt.destination_id,
            DeliveryAttempt.at,
            DeliveryAttempt.outcome,
            DeliveryAttempt.message,
            ExportRun.user_id,
            func.row_number()
            .over(partition_by=ExportRun.user_id, order_by=(DeliveryAttempt.at.desc(), DeliveryAttempt.id.desc()))
            .label("rank"),
        )
        .join(ExportRun, ExportRun.id == DeliveryAttempt.run_id)
        .subquery("latest_attempts")
    )
    return (
        select(*_columns("delivery_failed", ranked.c.at, ranked.c.message, ranked.c.run_id, ranked.c.destination_id))
        .join(ranked, ranked.c.user_id == User.id)
        .where(ranked.c.rank == 1, ranked.c.outcome != "delivered")
    )


def _run_failed(now: dt.datetime) -> Select[Any]:
    """Each user's newest finished run, where it failed and no delivery was tried (that is `delivery_failed`)."""
    ranked = (
        select(
            ExportRun.id,
            ExportRun.user_id,
            ExportRun.state,
            ExportRun.error,
            func.coalesce(ExportRun.finished_at, ExportRun.created_at).label("ended"),
            func.row_number()
            .over(
                partition_by=ExportRun.user_id,
                order_by=(func.coalesce(ExportRun.finished_at, ExportRun.created_at).desc(), ExportRun.id.desc()),
            )
            .label("rank"),
        )
        .where(ExportRun.state.in_(("delivered", "failed")))
        .subquery("latest_runs")
    )
    tried = exists().where(DeliveryAttempt.run_id == ranked.c.id)
    message = func.coalesce(ranked.c.error, "")
    return (
        select(*_columns("run_failed", ranked.c.ended, message, ranked.c.id, _no_destination()))
        .join(ranked, ranked.c.user_id == User.id)
        .where(ranked.c.rank == 1, ranked.c.state == "failed", ~tried)
    )


def _destination_error(now: dt.datetime) -> Select[Any]:
    message = func.coalesce(Destination.label + ": " + func.coalesce(Destination.status_message, "error"), "")
    at = func.coalesce(Destination.status_at, Destination.created_at)
    return (
        select(*_columns("destination_error", at, message, _no_run(), Destination.id))
        .join(Destination, Destination.user_id == User.id)
        .where(Destination.status == "error")
    )


def _missed_run(now: dt.datetime) -> Select[Any]:
    """Schedules that are on whose user's last delivered run (or, with none, the account) is older than allowed."""
    delivered = (
        select(ExportRun.user_id, func.max(ExportRun.finished_at).label("last_ok"))
        .where(ExportRun.state == "delivered")
        .group_by(ExportRun.user_id)
        .subquery("last_delivered")
    )
    since = func.coalesce(delivered.c.last_ok, User.created_at)
    late = or_(*(and_(Schedule.frequency == name, since < now - allowed) for name, allowed in ALLOWANCE.items()))
    message = literal("No delivered export on a ") + Schedule.frequency + literal(" schedule since this time")
    return (
        select(*_columns("missed_run", since, message, _no_run(), _no_destination()))
        .join(Schedule, Schedule.user_id == User.id)
        .outerjoin(delivered, delivered.c.user_id == User.id)
        .where(Schedule.enabled.is_(True), User.is_active.is_(True), late)
    )


def _stuck_run(now: dt.datetime) -> Select[Any]:
    lease_gone = and_(ExportRun.state == "running", ExportRun.lease_expires_at < now)
    never_picked = and_(ExportRun.state == "queued", ExportRun.not_before < now - QUEUED_TOO_LONG)
    at = func.coalesce(ExportRun.lease_expires_at, ExportRun.not_before)
    message = literal("Export ") + ExportRun.state + literal(": ") + func.coalesce(ExportRun.stage, "not started")
    return (
        select(*_columns("stuck_run", at, message, ExportRun.id, _no_destination()))
        .join(ExportRun, ExportRun.user_id == User.id)
        .where(or_(lease_gone, never_picked))
    )


def _retrying(now: dt.datetime) -> Select[Any]:
    at = func.coalesce(ExportRun.started_at, ExportRun.created_at)
    return (
        select(*_columns("retrying", at, func.coalesce(ExportRun.error, ""), ExportRun.id, _no_destination()))
        .join(ExportRun, ExportRun.user_id == User.id)
        .where(ExportRun.state == "retrying")
    )


_BRANCHES = {
    "delivery_failed": _delivery_failed,
    "run_failed": _run_failed,
    "destination_error": _destination_error,
    "missed_run": _missed_run,
    "stuck_run": _stuck_run,
    "retrying": _retrying,
}
