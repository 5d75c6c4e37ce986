"""The support queue: which users need attention now, and why, newest first.

Why one SQL statement (a UNION ALL of one SELECT per kind) rather than a loop
over users: with 100k users the queue must cost a few indexed scans and one
sort, not a query per user (bench/support_queue.py: a page in ~0.5 s with 100k
users and 500k runs on PostgreSQL). Each branch yields the same columns (kind, user,
when, message, run, destination), so filtering by kind is leaving branches
out, and paging is LIMIT/OFFSET on the union.

The kinds:
- `delivery_failed`: the user's latest delivery attempt did not deliver;
- `run_failed`: the user's latest finished run failed before any delivery was tried;
- `destination_error`: a destination whose last delivery or test failed;
- `missed_run`: a schedule that is on, and no delivered run for longer than it allows (`jobs.missed_runs`);
- `stuck_run`: a running run whose lease expired, or a queued one long past its start time;
- `retrying`: a run waiting to try again after a transient failure;
- `copy_damaged`: a delivered archive that a later check (`jobs.scrub`) found missing, changed or
  unreadable, or could not check, while that finding still stands: a later delivery to the
  destination or a later good check clears it, by the rule the user's pages use
  (`jobs.copy_checks.standing`);
- `drill_differences`: the user's newest fidelity drill (the archive read back after an export,
  `exporters.archive.drill`) found items that did not come back as they went in. The message gives
  the counts and the kinds and field names only (`ExportFidelity.difference_fields`): the difference
  lines themselves quote the user's data and are shown to the user alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, and_, case, exists, func, literal, null, or_, select, text, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from jobs import missed_runs, scrub
from jobs.copy_checks import standing
from store import DeliveryAttempt, Destination, DestinationCheck, ExportFidelity, ExportRun, Schedule, User

KINDS = (
    "delivery_failed",
    "run_failed",
    "destination_error",
    "missed_run",
    "stuck_run",
    "retrying",
    "copy_damaged",
    "drill_differences",
)
KIND_WORDS = {
    "delivery_failed": "Last delivery failed",
    "run_failed": "Last export failed",
    "destination_error": "Destination in error",
    "missed_run": "Missed scheduled exports",
    "stuck_run": "Export stuck",
    "retrying": "Export retrying",
    "copy_damaged": "Delivered copy not intact",
    "drill_differences": "Archive read back with differences",
}
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
    if session.get_bind().dialect.name == "postgresql":
        # The planner's cost estimate for this union (correlated subqueries over the users listed)
        # is far above its real cost, so PostgreSQL's JIT compiled it for ~1.4 s to save ~0.1 s
        # (bench/support_queue.py: 100k users). For this transaction only.
        session.execute(text("SET LOCAL jit = off"))
    every = union_all(*branches).subquery("queue")
    ordered = every.c.at.desc(), every.c.kind, every.c.user_id, every.c.run_id, every.c.destination_id
    # The total rides along with the page (one pass over the union); past the end, count apart.
    rows = session.execute(
        select(every, func.count().over().label("total")).order_by(*ordered).limit(limit).offset(offset)
    ).all()
    if rows:
        total = rows[0].total
    else:
        total = session.scalar(select(func.count()).select_from(every)) if offset else 0
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
    return QueuePage(items, total or 0)


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


def _no_dest() -> Any:
    return null().cast(Destination.id.type)


def _delivery_failed(now: dt.datetime) -> Select[Any]:
    """Attempts that did not deliver with no later attempt for the same user: each user's newest, if it failed.

    Why NOT EXISTS rather than ranking every attempt: failed attempts are few, and
    each is checked against its user's own runs by index, so the cost follows the
    failures, not the whole delivery history (a window over all attempts sorted
    half a million rows on PostgreSQL).
    """
    failed, run = aliased(DeliveryAttempt), aliased(ExportRun)
    other, other_run = aliased(DeliveryAttempt), aliased(ExportRun)
    newer = or_(other.at > failed.at, and_(other.at == failed.at, other.id > failed.id))
    later = exists().where(other_run.user_id == run.user_id, other.run_id == other_run.id, newer)
    return (
        select(*_columns("delivery_failed", failed.at, failed.message, failed.run_id, failed.destination_id))
        .join(run, run.user_id == User.id)
        .join(failed, failed.run_id == run.id)
        .where(failed.outcome != "delivered", ~later)
    )


def _ended(run: Any) -> Any:
    return func.coalesce(run.finished_at, run.created_at)


def _run_failed(now: dt.datetime) -> Select[Any]:
    """Failed runs with no later finished run of the user, where no delivery was tried (else `delivery_failed`)."""
    other = aliased(ExportRun)
    later = exists().where(
        other.user_id == ExportRun.user_id,
        other.state.in_(("delivered", "failed")),
        _ended(other) > _ended(ExportRun),
    )
    tried = exists().where(DeliveryAttempt.run_id == ExportRun.id)
    return (
        select(*_columns("run_failed", _ended(ExportRun), func.coalesce(ExportRun.error, ""), ExportRun.id, _no_dest()))
        .join(ExportRun, ExportRun.user_id == User.id)
        .where(ExportRun.state == "failed", ~later, ~tried)
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
    """Users the missed-run alerts consider overdue (`jobs.missed_runs`: the same conditions), with since
    when nothing was delivered and the last failure's words.

    The time shown is the last delivered run, or when the schedule was switched on if
    that is later (with neither, when the account was made); it and the last failure are
    looked up only for the users listed.
    """
    start, overdue = missed_runs.overdue_filter(now)
    last_ok = missed_runs.last_delivered()
    since = case((last_ok > start, last_ok), else_=start)
    failed = aliased(ExportRun)
    reason = (
        select(failed.error)
        .where(
            failed.user_id == User.id,
            failed.state.in_(("failed", "retrying")),
            failed.error.is_not(None),
            failed.created_at >= since,
        )
        .order_by(failed.created_at.desc(), failed.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    message = (
        literal("No delivered export on a ")
        + Schedule.frequency
        + literal(" schedule since this time.")
        + func.coalesce(literal(" Last failure: ") + reason, literal(""))
    )
    return (
        select(*_columns("missed_run", since, message, _no_run(), _no_dest()))
        .join(Schedule, Schedule.user_id == User.id)
        .where(overdue)
    )


def _stuck_run(now: dt.datetime) -> Select[Any]:
    lease_gone = and_(ExportRun.state == "running", ExportRun.lease_expires_at < now)
    never_picked = and_(ExportRun.state == "queued", ExportRun.not_before < now - QUEUED_TOO_LONG)
    at = func.coalesce(ExportRun.lease_expires_at, ExportRun.not_before)
    message = literal("Export ") + ExportRun.state + literal(": ") + func.coalesce(ExportRun.stage, "not started")
    return (
        select(*_columns("stuck_run", at, message, ExportRun.id, _no_dest()))
        .join(ExportRun, ExportRun.user_id == User.id)
        .where(or_(lease_gone, never_picked))
    )


def _retrying(now: dt.datetime) -> Select[Any]:
    at = func.coalesce(ExportRun.started_at, ExportRun.created_at)
    return (
        select(*_columns("retrying", at, func.coalesce(ExportRun.error, ""), ExportRun.id, _no_dest()))
        .join(ExportRun, ExportRun.user_id == User.id)
        .where(ExportRun.state == "retrying")
    )


def _copy_damaged(now: dt.datetime) -> Select[Any]:
    message = func.coalesce(Destination.label + ": " + DestinationCheck.state + ". " + DestinationCheck.detail, "")
    return (
        select(*_columns("copy_damaged", DestinationCheck.checked_at, message, DestinationCheck.run_id, Destination.id))
        .join(Destination, Destination.user_id == User.id)
        .join(DestinationCheck, DestinationCheck.destination_id == Destination.id)
        .where(DestinationCheck.state.in_((*scrub.BAD, scrub.ERROR)), standing())
    )


class Thousands(FunctionElement[str]):
    """A whole number as text with thousands separators ("1,312"), as the rest of the console writes them."""

    type = Text()
    inherit_cache = True


@compiles(Thousands)
def _thousands(element: Thousands, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(Thousands, "sqlite")
def _thousands_sqlite(element: Thousands, compiler: SQLCompiler, **kw: Any) -> str:
    return f"printf('%,d', {compiler.process(element.clauses, **kw)})"


@compiles(Thousands, "postgresql")
def _thousands_postgresql(element: Thousands, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'FM999,999,999,999,990')"


# What support does about a drill's differences: the archive stays; the developers need the run and the fields.
DRILL_ADVICE = (
    " The archive was kept and delivered as the best copy; the user's records are unchanged."
    " What to do: report the run id and these field names to the developers (never ask the user for the values);"
    " once they say it is fixed, start a new export from the user's page to check again."
)


def _drill_differences(now: dt.datetime) -> Select[Any]:
    """Users whose newest drill (of a run) found differences: counts and field names, never values.

    Why only the newest: a later export that read back equal clears it, as a later
    delivery clears `delivery_failed`. Drills with differences are few, and each is
    checked against its user's runs by index.
    """
    run, other, other_run = aliased(ExportRun), aliased(ExportFidelity), aliased(ExportRun)
    newer = or_(
        other.checked_at > ExportFidelity.checked_at,
        and_(other.checked_at == ExportFidelity.checked_at, other.id > ExportFidelity.id),
    )
    later = exists().where(other_run.user_id == run.user_id, other.run_id == other_run.id, newer)
    message = (
        literal("The fidelity drill found ")
        + Thousands(ExportFidelity.differences)
        + case((ExportFidelity.differences == 1, literal(" difference")), else_=literal(" differences"))
        + literal(" in run ")
        + run.id
        + literal(" (")
        + Thousands(ExportFidelity.items)
        + literal(" items read back).")
        + func.coalesce(literal(" Fields: ") + ExportFidelity.difference_fields + literal("."), literal(""))
        + literal(DRILL_ADVICE)
    )
    return (
        select(*_columns("drill_differences", ExportFidelity.checked_at, message, run.id, _no_dest()))
        .join(run, run.user_id == User.id)
        .join(ExportFidelity, ExportFidelity.run_id == run.id)
        .where(ExportFidelity.differences > 0, ~later)
    )


_BRANCHES = {
    "delivery_failed": _delivery_failed,
    "run_failed": _run_failed,
    "destination_error": _destination_error,
    "missed_run": _missed_run,
    "stuck_run": _stuck_run,
    "retrying": _retrying,
    "copy_damaged": _copy_damaged,
    "drill_differences": _drill_differences,
}
