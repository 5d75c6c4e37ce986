"""The run lifecycle: request, claim, heartbeat, finish; every transition a conditional UPDATE.

Why conditional UPDATEs and not locks held in Python: executors are threads in
one process or Celery workers on many machines, and any of them may die at
any moment. A transition only happens if the row is still in the state the
caller believes (and, once running, still leased to the caller), so a
redelivered task, a second dispatcher or a zombie worker finds nothing to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import ACTIVE_STATES, Archive, Database, ExportFidelity, ExportRun, RunEvent, RunState
from store.runs import KEPT_HERE

CLAIMABLE = (RunState.QUEUED, RunState.RETRYING)
STAGE_EVENT = "stage"  # a history line whose message is the name of the stage that began at its time


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between attempts of one run, with a cap."""

    base: dt.timedelta = dt.timedelta(minutes=1)
    cap: dt.timedelta = dt.timedelta(hours=1)
    max_attempts: int = 5

    def delay(self, attempt: int) -> dt.timedelta:
        return min(self.cap, self.base * (2 ** max(0, attempt - 1)))


def _rowcount(result: Result[Any]) -> int:
    """Rows a conditional UPDATE changed (a DML result is a CursorResult; Session.execute is typed as Result)."""
    return cast("CursorResult[Any]", result).rowcount


def add_event(session: Session, run_id: str, kind: str, message: str, *, at: dt.datetime, level: str = "info") -> None:
    session.add(RunEvent(run_id=run_id, kind=kind, message=message, level=level, at=at))


def add_events(session: Session, run_id: str, lines: Sequence[tuple[str, str, dt.datetime]]) -> None:
    """Several "info" history lines `(kind, message, at)` in one statement, in this order.

    Why not `add_event` each: the ORM inserts each object with its own INSERT ... RETURNING,
    and a run's finish writes half a dozen lines (its stages, "exported", "delivered").
    """
    rows = [{"run_id": run_id, "kind": kind, "message": text, "level": "info", "at": at} for kind, text, at in lines]
    if rows:
        session.execute(insert(RunEvent), rows)


@dataclass(frozen=True)
class NewArchive:
    """A new, verified archive whose row is not written yet, and its "exported" history line."""

    row: Archive
    message: str
    at: dt.datetime
    # What its fidelity drill found (`jobs.export.fidelity_row`), written with the row and linked to the run.
    fidelity: ExportFidelity | None = None

    @property
    def level(self) -> str:
        """ "warning" when the drill found differences: the history shows the line as one, not as routine."""
        return "warning" if self.fidelity is not None and self.fidelity.differences else "info"

    def add_fidelity(self, session: Session, run_id: str) -> None:
        if self.fidelity is not None:
            self.fidelity.run_id = run_id
            self.fidelity.archive_id = self.row.id
            session.add(self.fidelity)


def active_run(session: Session, user_id: int) -> ExportRun | None:
    return session.scalar(
        select(ExportRun).where(ExportRun.user_id == user_id, ExportRun.state.in_(list(ACTIVE_STATES)))
    )


def request_run(
    session: Session,
    user_id: int,
    trigger: str,
    *,
    now: dt.datetime,
    period_key: str | None = None,
    max_attempts: int = RetryPolicy.max_attempts,
) -> tuple[ExportRun, bool]:
    """Queue a run for the user, or return the run that already covers the request.

    Returns `(run, created)`. At most one run is active per user (a partial unique
    index), and a scheduled period is exported once (unique user and period key):
    racing requesters all end up with the same run.
    """
    existing = active_run(session, user_id)
    if existing is not None:
        return existing, False
    run = ExportRun(
        user_id=user_id,
        trigger=trigger,
        period_key=period_key,
        state=RunState.QUEUED,
        not_before=now,
        created_at=now,
        max_attempts=max_attempts,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        found = active_run(session, user_id)
        if found is None and period_key is not None:
            found = session.scalar(
                select(ExportRun).where(ExportRun.user_id == user_id, ExportRun.period_key == period_key)
            )
        if found is None:
            raise
        return found, False
    add_event(session, run.id, "queued", f"Export requested ({trigger}).", at=now)
    return run, True


def claim(db: Database, run_id: str, owner: str, *, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take a queued or retrying run that is due; True if this caller now owns it."""
    with db.session(write=True) as session:
        # RETURNING the new attempt number: one statement where an UPDATE and a SELECT were
        # (every run pays its claim; SQLite has RETURNING since 3.35).
        attempt = session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id, ExportRun.state.in_(CLAIMABLE), ExportRun.not_before <= now)
            .values(
                state=RunState.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + lease,
                attempt=ExportRun.attempt + 1,
                stage="starting",
                progress=0,
                started_at=now,
                error=None,
            )
            .returning(ExportRun.attempt)
        ).scalar_one_or_none()
        if attempt is None:
            return False
        add_event(session, run_id, "started", f"Attempt {attempt} started.", at=now)
        return True


def claim_next(db: Database, owner: str, *, now: dt.datetime, lease: dt.timedelta) -> str | None:
    """Claim the oldest due run of anyone (the embedded pool's way to find work)."""
    due = (
        select(ExportRun.id)
        .where(ExportRun.state.in_(CLAIMABLE), ExportRun.not_before <= now)
        .order_by(ExportRun.not_before)
        .limit(5)
    )
    with db.session() as session:
        candidates = list(session.scalars(due))
    for run_id in candidates:
        if claim(db, run_id, owner, now=now, lease=lease):
            return run_id
    return None


def heartbeat(
    db: Database,
    run_id: str,
    owner: str,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    stage: str | None = None,
    progress: int | None = None,
    stages: Sequence[tuple[str, dt.datetime]] = (),
) -> bool:
    """Extend the lease (and report progress); False means the run is no longer ours.

    `stages` are the stage changes since the last heartbeat, each with the time
    it began: written as "stage" history lines (the stage's name as message) in
    the same transaction, so only the run's owner records them.
    """
    values: dict[str, object] = {"lease_expires_at": now + lease}
    if stage is not None:
        values["stage"] = stage
    if progress is not None:
        values["progress"] = progress
    with db.session(write=True) as session:
        result = session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id, ExportRun.state == RunState.RUNNING, ExportRun.lease_owner == owner)
            .values(**values)
        )
        if _rowcount(result) != 1:
            return False
        for name, at in stages:
            add_event(session, run_id, STAGE_EVENT, name, at=at)
        return True


def _owned(run_id: str, owner: str) -> ColumnElement[bool]:
    return and_(ExportRun.id == run_id, ExportRun.state == RunState.RUNNING, ExportRun.lease_owner == owner)


def attach_archive(session: Session, run_id: str, owner: str, archive_id: str) -> bool:
    result = session.execute(update(ExportRun).where(_owned(run_id, owner)).values(archive_id=archive_id))
    return _rowcount(result) == 1


def record_archive(session: Session, run_id: str, owner: str, archive: NewArchive) -> bool:
    """Insert the archive's row, link the run to it and write its "exported" line; False if the run is not ours.

    On False the caller rolls the transaction back (the row must not stay without its run).
    """
    session.add(archive.row)
    session.flush()
    if not attach_archive(session, run_id, owner, archive.row.id):
        return False
    archive.add_fidelity(session, run_id)
    add_event(session, run_id, "exported", archive.message, at=archive.at, level=archive.level)
    return True


class _NotOurs(Exception):
    """Rolls back a finish whose run turned out to be someone else's."""


def finish_delivered(
    db: Database,
    run_id: str,
    owner: str,
    *,
    now: dt.datetime,
    message: str,
    stages: Sequence[tuple[str, dt.datetime]] = (),
    archive: NewArchive | None = None,
) -> bool:
    """Mark the run delivered; False means it is no longer ours (nothing is written then).

    `stages` are stage changes the heartbeat has not written yet (as in `heartbeat`):
    written here, in the same transaction, instead of in a last renewal of their own.
    `archive`: a new archive not recorded yet (a run with nothing to send), recorded
    in the same transaction as its "exported" line, before the stages.
    """
    values: dict[str, object] = {
        "state": RunState.DELIVERED,
        "stage": "done",
        "progress": 100,
        "finished_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "error": None,
    }
    lines: list[tuple[str, str, dt.datetime]] = []
    try:
        with db.session(write=True) as session:
            if archive is not None:
                session.add(archive.row)
                session.flush()  # the row first: the run's archive_id refers to it
                values["archive_id"] = archive.row.id
                archive.add_fidelity(session, run_id)
                if archive.level == "info":
                    lines.append(("exported", archive.message, archive.at))
                else:
                    add_event(session, run_id, "exported", archive.message, at=archive.at, level=archive.level)
            result = session.execute(update(ExportRun).where(_owned(run_id, owner)).values(**values))
            if _rowcount(result) != 1:
                raise _NotOurs
            lines.extend((STAGE_EVENT, name, at) for name, at in stages)
            lines.append(("delivered", message, now))
            add_events(session, run_id, lines)
    except _NotOurs:
        return False
    return True


def finish_failed_attempt(
    db: Database,
    run_id: str,
    owner: str,
    *,
    now: dt.datetime,
    error: str,
    permanent: bool,
    policy: RetryPolicy,
    operator: bool = False,
) -> RunState | None:
    """Record a failed attempt: schedule a retry with backoff, or fail for good.

    `error` says what went wrong (and how to fix it); the sentence about what
    happens next is added here, where it is decided, so a run that failed for
    good never promises a retry. `operator`: only the service's operator can fix
    the cause (the user is not told to fix it). Returns the new state, or None
    if the run was no longer ours.
    """
    error = sentence(error)
    with db.session(write=True) as session:
        # Locked: a dispatcher requeueing the run (lease ran out) must not interleave with this.
        run = session.scalar(select(ExportRun).where(_owned(run_id, owner)).with_for_update())
        if run is None:
            return None
        final = permanent or run.attempt >= run.max_attempts
        if final:
            error = f"{error} {given_up(run.attempt, permanent=permanent, operator=operator, trigger=run.trigger)}"
            run.state = RunState.FAILED
            run.finished_at = now
            add_event(session, run_id, "failed", error, at=now, level="error")
        else:
            delay = policy.delay(run.attempt)
            run.state = RunState.RETRYING
            run.not_before = now + delay
            run.dispatched_at = run.redispatch_at = None
            add_event(
                session,
                run_id,
                "retry",
                f"Attempt {run.attempt} failed: {error} Retrying in {_human(delay)}.",
                at=now,
                level="warning",
            )
            error = f"{error} Lifeboat will try again in {_human(delay)} (attempt {run.attempt} of {run.max_attempts})."
        run.error = error
        run.lease_owner = None
        run.lease_expires_at = None
        return RunState(run.state)


def fail_kept_here(db: Database, run_id: str, *, now: dt.datetime, error: str) -> bool:
    """Record a finished run that sends nothing (`runs.KEPT_HERE`) as failed: its last step, outside the run, failed.

    Why after the finish: `lifeboat export --out` copies the recorded archive out
    of the store once the run has ended; a copy that cannot be written leaves an
    archive the run made and kept, but the export did not do what was asked, and
    History must not say "delivered" (user trial). False if the run was not such a run.
    """
    error = sentence(error)
    with db.session(write=True) as session:
        result = session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id, ExportRun.state == RunState.DELIVERED, ExportRun.trigger == KEPT_HERE)
            .values(state=RunState.FAILED, error=error)
        )
        if _rowcount(result) != 1:
            return False
        add_event(session, run_id, "failed", error, at=now, level="error")
    return True


def cancel(db: Database, run_id: str, user_id: int, *, now: dt.datetime) -> RunState | None:
    """Cancel the user's run if it is still active; return its state afterwards, None if not theirs.

    A queued or retrying run is cancelled outright. A running one is set to
    cancelled too, lease and all: its executor's next heartbeat finds the run no
    longer its own, so it stops at its next progress report and writes nothing
    more (no archive row, no "delivered"), exactly as when another worker took
    the run over. A delivery already in flight at that moment still completes
    and is recorded as an attempt. One conditional UPDATE, so a run finishing at
    the same instant is either delivered or cancelled, never both.
    """
    with db.session(write=True) as session:
        result = session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id, ExportRun.user_id == user_id, ExportRun.state.in_(list(ACTIVE_STATES)))
            .values(
                state=RunState.CANCELLED,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
                dispatched_at=None,
                redispatch_at=None,
                error=None,
            )
        )
        if _rowcount(result) == 1:
            add_event(session, run_id, "cancelled", "Export cancelled at your request.", at=now, level="warning")
            return RunState.CANCELLED
        state = session.scalar(select(ExportRun.state).where(ExportRun.id == run_id, ExportRun.user_id == user_id))
        return None if state is None else RunState(state)


def requeue_expired(db: Database, *, now: dt.datetime) -> list[str]:
    """Take back runs whose executor stopped renewing its lease (crash, kill -9, lost host).

    The attempt counts as failed: the run is retried right away unless it has
    used all its attempts. Whatever the dead executor was writing never got
    its final name, so nothing partial is visible.
    """
    with db.session(write=True) as session:
        # Locked, skipping rows another dispatcher or the run's own (late) executor holds: without
        # the lock, an executor finishing right now would have its delivered run set back to queued
        # and exported again, and two dispatchers would both requeue (and double-count) one run.
        stale = list(
            session.scalars(
                select(ExportRun)
                .where(ExportRun.state == RunState.RUNNING, ExportRun.lease_expires_at < now)
                .with_for_update(skip_locked=True)
            )
        )
        for run in stale:
            lost = f"The worker running attempt {run.attempt} stopped responding."
            if run.attempt >= run.max_attempts:
                run.state = RunState.FAILED
                run.finished_at = now
                run.error = f"{lost} {given_up(run.attempt, permanent=False, trigger=run.trigger)}"
                add_event(session, run.id, "failed", run.error, at=now, level="error")
            else:
                run.state = RunState.QUEUED
                run.not_before = now
                run.dispatched_at = run.redispatch_at = None
                add_event(session, run.id, "requeued", lost + " Trying again.", at=now, level="warning")
            run.lease_owner = None
            run.lease_expires_at = None
        return [run.id for run in stale]


def undispatched(
    db: Database,
    *,
    now: dt.datetime,
    redispatch_after: dt.timedelta,
    limit: int = 1000,
    max_redispatch_after: dt.timedelta | None = None,
) -> list[str]:
    """Due runs to hand to the worker queue now: never sent, or sent and still unclaimed; marks them.

    A run still queued `redispatch_after` after it was sent is sent again: its message
    may have been lost (a broker restarted without persistence). Why the wait then
    doubles, up to `max_redispatch_after` (16x by default): a run that is merely waiting
    behind a long backlog would otherwise be re-sent every period and pile duplicates
    into the queue. Duplicates are harmless (only one claim succeeds), just wasteful.
    """
    cap = max_redispatch_after or redispatch_after * 16
    with db.session(write=True) as session:
        rows = list(
            session.scalars(
                select(ExportRun)
                .where(
                    ExportRun.state.in_(CLAIMABLE),
                    ExportRun.not_before <= now,
                    or_(ExportRun.redispatch_at.is_(None), ExportRun.redispatch_at <= now),
                )
                .order_by(ExportRun.not_before)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for run in rows:
            wait = redispatch_after
            if run.dispatched_at is not None and run.redispatch_at is not None:
                wait = min(max(2 * (run.redispatch_at - run.dispatched_at), redispatch_after), cap)
            run.dispatched_at, run.redispatch_at = now, now + wait
        return [run.id for run in rows]


def sentence(text: str) -> str:
    """`text` as a sentence: capitalised, ending in a full stop (error texts often are neither).

    Why: the run's error is this text followed by what happens next; without
    the stop the two run together ("… not configured Lifeboat will not …").
    """
    text = text.strip()
    if not text:
        return text
    first = text.split(None, 1)[0]
    # A leading address, command or name in code ("http://…", "s3:PutObject", "boto3 …") keeps its case.
    keep = "://" in first or ":" in first.rstrip(":") or "/" in first or not first[:1].islower() or "_" in first
    head = text if keep else text[:1].upper() + text[1:]
    return head + ("" if text[-1] in ".!?" else ".")


def given_up(attempts: int, *, permanent: bool, operator: bool = False, trigger: str = "manual") -> str:
    """What a run that failed for good tells its user: that Lifeboat stopped, and what they can do now.

    Who can fix the cause decides the advice: a setting of the user's (a bucket
    key) they fix and export again; a setting of the server's (no mail server)
    only the operator can fix, so the user is not told to fix it. A re-send
    that support started is one the user can ask support for again; a run of
    the schedule will be followed by the next scheduled one.
    """
    again = "ask support to send it again, or press “Export now”" if trigger == "support" else "press “Export now”"
    later = " (or wait for the next scheduled export)" if trigger == "schedule" else ""
    if permanent and operator:
        return (
            "Only the operator of this Lifeboat service can fix this, so Lifeboat will not retry it by itself. "
            f"Your earlier archives are untouched: try again later ({again}){later}."
        )
    if permanent:
        return f"Lifeboat will not retry this by itself. Once you have fixed it, {again}{later}."
    gave_up = f"Lifeboat gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
    if trigger == "support":
        return f"{gave_up}. To try again, {again}."
    return f"{gave_up}: {again} to try again{later}, and contact support if it keeps failing."


def _human(delay: dt.timedelta) -> str:
    seconds = int(delay.total_seconds())
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"
