"""Bulk re-send after an outage: every user whose delivery failed in a window gets their latest verified archive again.

Why no table of its own: the audit log already is a durable, append-only
record keyed by request key, and `support_actions.resend_archive` already acts
once per key. So a bulk job is only audit rows:

- `bulk_resend_started` (key `bulk:<job>`): who, why, the filter, the rate and
  the selected user ids, frozen at the start so a restart works on the same list;
- one row per user with key `bulk:<job>:<user id>`: the re-send's own
  `archive.resend` row, or `bulk_resend_skipped` when the account's state
  refused it (no destination left, an export running, …);
- `bulk_resend_paused` / `bulk_resend_resumed` (keys `bulkctl:<job>:<random>`):
  the last one says whether the job may go on.

Progress is the number of per-user keys present, so any process (a restarted
CLI, another web worker) sees the same figure, and a second runner of the same
job sends nobody twice: each user's key is checked inside the write that would
queue their re-send. A dry run writes one row (`bulk_resend_dry_run`) and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import delete, func, or_, select, true, update
from sqlalchemy.orm import Session

from errors import InvalidInput
from jobs import support_actions
from jobs.audit import Actor, already_done, record
from jobs.support_actions import MAX_REASON, ActionRefused, UnknownTarget, check_reason, check_request_key
from store import Archive, AuditEvent, BulkResendRunner, Database, DeliveryAttempt, Destination, ExportRun, User

KINDS = ("s3", "email")
AWS_HOST = "aws"  # the host filter's name for an S3 destination without an endpoint (AWS itself)
SAMPLE_SIZE = 20
BATCH_SIZE = 50
LOG = logging.getLogger("lifeboat.bulk_resend")  # under "lifeboat": the JSON log lines
INLINE = "lifeboat.bulk_resend.inline"  # in app.extensions: run jobs in the caller, not a thread (tests)
JOB_ID = re.compile(r"^[0-9a-f]{16}$")
STARTED, PAUSED, RESUMED, SKIPPED, DRY_RUN = (
    "bulk_resend_started",
    "bulk_resend_paused",
    "bulk_resend_resumed",
    "bulk_resend_skipped",
    "bulk_resend_dry_run",
)


class UnknownJob(InvalidInput):
    """No bulk re-send with this id: the pages answer 404."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"There is no bulk re-send {job_id!r}: start one with a dry run first.", [("job", "unknown")])


@dataclass(frozen=True)
class BulkFilter:
    """Whose delivery failed: attempts in [since, until), optionally one kind and one S3 endpoint host."""

    since: dt.datetime
    until: dt.datetime
    kind: str | None = None
    host: str | None = None

    def as_detail(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "kind": self.kind, "host": self.host}

    @classmethod
    def of_detail(cls, detail: dict[str, Any]) -> BulkFilter:
        return cls(
            dt.datetime.fromisoformat(detail["since"]),
            dt.datetime.fromisoformat(detail["until"]),
            detail.get("kind"),
            detail.get("host"),
        )

    def describe(self) -> str:
        what = f"{self.kind} deliveries" if self.kind else "deliveries"
        where = f" to {self.host}" if self.host else ""
        return f"{what}{where} that failed from {minute(self.since)} to {minute(self.until)} UTC"


def minute(moment: dt.datetime) -> str:
    """`2026-12-05 08:00`; why not strftime's %Y: glibc writes the year 1 as "1", not "0001" (trial 14)."""
    return moment.isoformat(sep=" ", timespec="minutes")[:16]


def _moment(text: str | dt.datetime | None, name: str) -> dt.datetime:
    if isinstance(text, dt.datetime):
        moment = text
    else:
        try:
            moment = dt.datetime.fromisoformat((text or "").strip())
        except ValueError:
            raise InvalidInput(
                f"--{name} {text!r} is not a time: write it as ISO 8601, e.g. 2026-12-06T09:30 (UTC without a zone).",
                [(name, "not a time")],
            ) from None
    try:
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before the first moment there is in UTC
        raise InvalidInput(
            f"--{name} {text!r} is outside the times Lifeboat can compare: give one in the years 1 to 9999 UTC.",
            [(name, "out of range")],
        ) from None


def parse_filter(
    since: str | dt.datetime | None, until: str | dt.datetime | None, kind: str | None = None, host: str | None = None
) -> BulkFilter:
    """The filter as typed (CLI, form, API), checked: times in ISO 8601 (UTC when no zone), since before until."""
    start, end = _moment(since, "since"), _moment(until, "until")
    if start >= end:
        # Said for every caller (form, API, CLI): the web form has no "--since" to swap.
        raise InvalidInput(
            f"The window starts at {minute(start)} UTC, after it ends ({minute(end)} UTC): "
            "the start (since) must come before the end (until), so swap the two times.",
            [("until", "before since")],
        )
    kind = (kind or "").strip().lower() or None
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"The kind is “s3” or “email”, not {kind!r}.", [("kind", "unknown")])
    host = (host or "").strip().lower() or None
    if host is not None:
        if kind == "email":
            raise InvalidInput("A host filters S3 endpoints: leave it out for email.", [("host", "email")])
        kind = "s3"
    return BulkFilter(start, end, kind, host)


def endpoint_host(destination: Destination) -> str:
    """The S3 endpoint's host name (lower case), or `aws` for a destination on AWS itself (no endpoint)."""
    url = str(destination.settings.get("endpoint_url") or "")
    return (urlsplit(url).hostname or AWS_HOST).lower() if url else AWS_HOST


@dataclass(frozen=True)
class Candidate:
    """One user to re-send to: their last failure in the window and the archive they would get."""

    user_id: int
    email: str
    failed_at: dt.datetime
    destination: str  # e.g. "s3 (minio.example)" or "email"
    archive_id: str
    archive_at: dt.datetime
    archive_size: int


def select_users(session: Session, flt: BulkFilter) -> list[Candidate]:
    """Active users with a failed attempt in the window (kind/host as filtered) and a verified, kept archive.

    Ordered by user id, so the list (and a restart's position in it) is stable.
    """
    rows = session.execute(
        select(DeliveryAttempt.at, ExportRun.user_id, Destination)
        .join(ExportRun, ExportRun.id == DeliveryAttempt.run_id)
        .outerjoin(Destination, Destination.id == DeliveryAttempt.destination_id)
        .where(DeliveryAttempt.outcome != "delivered", DeliveryAttempt.at >= flt.since, DeliveryAttempt.at < flt.until)
    )
    last: dict[int, tuple[dt.datetime, str]] = {}
    for at, user_id, destination in rows:
        if flt.kind is not None and (destination is None or destination.kind != flt.kind):
            continue
        if flt.host is not None and endpoint_host(destination) != flt.host:
            continue
        where = "unknown (removed)" if destination is None else destination.kind
        if destination is not None and destination.kind == "s3":
            where = f"s3 ({endpoint_host(destination)})"
        if user_id not in last or at > last[user_id][0]:
            last[user_id] = (at, where)
    found = []
    for user_id in sorted(last):
        user = session.get(User, user_id)
        if user is None or not user.is_active or user.role != "user" or _recovered(session, user_id, last[user_id][0]):
            continue
        archive = latest_archive(session, user_id)
        if archive is None:
            continue
        at, where = last[user_id]
        found.append(Candidate(user_id, user.email, at, where, archive.id, archive.created_at, archive.size))
    return found


def _recovered(session: Session, user_id: int, failed_at: dt.datetime) -> bool:
    """Whether a delivery of the user's succeeded after their last failure: they have a good copy already."""
    delivered = session.scalar(
        select(func.max(DeliveryAttempt.at))
        .join(ExportRun, ExportRun.id == DeliveryAttempt.run_id)
        .where(ExportRun.user_id == user_id, DeliveryAttempt.outcome == "delivered")
    )
    return delivered is not None and delivered > failed_at


def latest_archive(session: Session, user_id: int) -> Archive | None:
    """The newest verified archive the user still has (the one a re-send delivers)."""
    return session.scalar(
        select(Archive)
        .where(Archive.user_id == user_id, Archive.verified_at.is_not(None), Archive.deleted_at.is_(None))
        .order_by(Archive.created_at.desc(), Archive.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class DryRun:
    count: int
    sample: list[Candidate]
    filter: BulkFilter


def dry_run(db: Database, actor: Actor, flt: BulkFilter, *, reason: str, now: dt.datetime) -> DryRun:
    """Who a real run would re-send to: the count and the first few; only its audit row is written."""
    reason = check_reason(reason)
    with db.session() as session:
        found = select_users(session, flt)
        session.expunge_all()
    with db.session(write=True) as session:
        record(session, actor, DRY_RUN, now=now, reason=reason, detail={"filter": flt.as_detail(), "count": len(found)})
    return DryRun(len(found), found[:SAMPLE_SIZE], flt)


def _key(job_id: str, user_id: int) -> str:
    return f"bulk:{job_id}:{user_id}"


def check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id or ""):
        raise UnknownJob(job_id)
    return job_id


def start(
    db: Database,
    actor: Actor,
    flt: BulkFilter,
    *,
    reason: str,
    per_minute: int | None,
    now: dt.datetime,
    request_key: str | None = None,
) -> str:
    """Freeze the selection into a new job's `bulk_resend_started` row; its id. Nothing is sent yet (`run`).

    With a `request_key` (a form's, an API call's) the job id is derived from
    it, so a second press of "Start" finds the first job instead of making another.
    """
    reason, request_key = check_reason(reason), check_request_key(request_key)
    if per_minute is not None and per_minute < 1:
        raise InvalidInput("The rate is at least 1 user a minute (or leave it out: no limit).", [("per_minute", "< 1")])
    job_id = hashlib.sha256(request_key.encode()).hexdigest()[:16] if request_key else secrets.token_hex(8)
    with db.session(write=True) as session:
        if already_done(session, f"bulk:{job_id}") is not None:
            return job_id
        user_ids = [c.user_id for c in select_users(session, flt)]
        if not user_ids:
            raise InvalidInput(
                f"Nobody to re-send to for {flt.describe()}: no such failure, or each such user has had a"
                " delivery since or has no verified archive. Widen the window or check the filter.",
                [("since", "no users")],
            )
        record(
            session,
            actor,
            STARTED,
            now=now,
            reason=reason,
            detail={
                "job_id": job_id,
                "filter": flt.as_detail(),
                "count": len(user_ids),
                "per_minute": per_minute,
                "user_ids": user_ids,
            },
            request_key=f"bulk:{job_id}",
        )
        session.add(BulkResendRunner(job_id=job_id, owner="", expires_at=now))  # unclaimed: any runner may take it
    return job_id


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands, from its audit rows alone (the same for every process that asks)."""

    job_id: str
    count: int
    done: int
    sent: int
    skipped: int
    paused: bool
    filter: BulkFilter
    reason: str
    started_at: dt.datetime
    started_by: str
    per_minute: int | None
    user_ids: list[int] = field(repr=False)

    @property
    def finished(self) -> bool:
        return self.done >= self.count

    @property
    def state(self) -> str:
        return "finished" if self.finished else "paused" if self.paused else "running"

    def describe(self) -> str:
        return (
            f"Bulk re-send {self.job_id}: {self.done:,} of {self.count:,} users done "
            f"({self.sent:,} re-sent, {self.skipped:,} skipped), {self.state}."
        )


def status(session: Session, job_id: str) -> JobStatus:
    started = already_done(session, f"bulk:{check_job_id(job_id)}")
    if started is None or started.action != STARTED:
        raise UnknownJob(job_id)
    detail: dict[str, Any] = json.loads(started.detail or "{}")
    outcomes = session.execute(
        select(AuditEvent.action, AuditEvent.outcome, func.count(AuditEvent.id))
        .where(AuditEvent.request_key.like(f"bulk:{job_id}:%"))
        .group_by(AuditEvent.action, AuditEvent.outcome)
    ).all()
    done = {"all": sum(n for _a, _o, n in outcomes)}
    sent = sum(n for action, outcome, n in outcomes if action == "archive.resend" and outcome == "ok")
    return JobStatus(
        job_id=job_id,
        count=int(detail["count"]),
        done=done["all"],
        sent=sent,
        skipped=done["all"] - sent,  # refused re-sends (audited as such) and users skipped
        paused=_paused(session, job_id),
        filter=BulkFilter.of_detail(detail["filter"]),
        reason=started.reason,
        started_at=started.at,
        started_by=started.actor_email,
        per_minute=detail.get("per_minute"),
        user_ids=[int(u) for u in detail["user_ids"]],
    )


def _paused(session: Session, job_id: str) -> bool:
    """Whether the job's last pause/resume row is a pause (cheap: the runner asks before every user)."""
    control = session.scalar(
        select(AuditEvent.action)
        .where(AuditEvent.request_key.like(f"bulkctl:{job_id}:%"))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return control == PAUSED


def _control(db: Database, actor: Actor, job_id: str, action: str, *, reason: str, now: dt.datetime) -> JobStatus:
    """Pause or resume, with one audit row; a reason given is held to the rule every staff reason follows.

    Why checked here: the staff API and the console pass what was typed, and a
    NUL in it made PostgreSQL refuse the row (a 500); an over-long one was kept
    whole. No reason at all (the CLI) falls back to the job's own.
    """
    given = check_reason(reason) if reason else ""
    with db.session(write=True) as session:
        current = status(session, job_id)
        if current.finished or current.paused == (action == PAUSED):
            return current  # nothing to change: pausing a paused job (or a finished one) is no new row
        record(
            session,
            actor,
            action,
            now=now,
            reason=given or current.reason,
            detail={"job_id": job_id, "done": current.done, "count": current.count},
            request_key=f"bulkctl:{job_id}:{secrets.token_hex(6)}",
        )
        return status(session, job_id)


def pause(db: Database, actor: Actor, job_id: str, *, reason: str = "", now: dt.datetime) -> JobStatus:
    """Stop the job before its next user (a re-send already queued still goes out)."""
    return _control(db, actor, job_id, PAUSED, reason=reason, now=now)


def resume(db: Database, actor: Actor, job_id: str, *, reason: str = "", now: dt.datetime) -> JobStatus:
    """Let the job go on; the caller runs it again (`run`) to continue where it stopped."""
    return _control(db, actor, job_id, RESUMED, reason=reason, now=now)


def claim(
    db: Database, job_id: str, owner: str, *, now: dt.datetime, lease: dt.timedelta, take_over: bool = False
) -> bool:
    """Take (or keep) the job's runner lease until `now + lease`; False if a live runner holds it.

    One conditional UPDATE, atomic on SQLite and PostgreSQL alike: of two
    processes that find the same expired lease, exactly one gets the row.
    `take_over` (a person pressed Continue or ran `--job`) takes it even from a
    live holder, which sees the new owner before its next user and stops.
    """
    with db.session(write=True) as session:
        free = or_(BulkResendRunner.expires_at <= now, BulkResendRunner.owner == owner)
        taken = session.execute(
            update(BulkResendRunner)
            .where(BulkResendRunner.job_id == job_id)
            .where(true() if take_over else free)
            .values(owner=owner, expires_at=now + lease)
        )
        return bool(getattr(taken, "rowcount", 0))


def _let_go(db: Database, job_id: str, owner: str, *, finished: bool, now: dt.datetime) -> None:
    """Drop the lease: the row goes with a finished job; a paused one stays, claimable once resumed."""
    with db.session(write=True) as session:
        mine = (BulkResendRunner.job_id == job_id) & (BulkResendRunner.owner == owner)
        if finished:
            session.execute(delete(BulkResendRunner).where(BulkResendRunner.job_id == job_id))
        else:
            session.execute(update(BulkResendRunner).where(mine).values(expires_at=now))


def run(
    db: Database,
    job_id: str,
    *,
    now: Callable[[], dt.datetime],
    kick: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    stop_after: int | None = None,
    on_progress: Callable[[JobStatus], None] = lambda _status: None,
    owner: str | None = None,
    lease: dt.timedelta = dt.timedelta(minutes=2),
    take_over: bool = False,
) -> JobStatus:
    """Re-send to every user of the job not done yet, in batches, until finished or paused.

    Each user's re-send is its own short write (`resend_archive`, keyed
    `bulk:<job>:<user>`): stopping anywhere loses nothing and repeats nothing.
    `kick` wakes the workers after each batch; at most `per_minute` users a
    minute are queued so one recovered bucket is not flooded. `stop_after`
    (tests: an interruption) stops after that many users of this call, as a
    killed process would: holding its lease until it expires.

    The runner holds the job's lease (`claim`), renewed at half its length, so
    while it lives no dispatch tick starts a second runner of the same job (which
    would send nobody twice, but would double the rate). If another runner holds
    it, this returns at once with the job's status, unless `take_over` (see `claim`).
    """
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{secrets.token_hex(4)}"
    with db.session() as session:
        job = status(session, job_id)
        started = already_done(session, f"bulk:{job_id}")
        assert started is not None
        actor = Actor(started.actor_id, started.actor_email, started.actor_role, started.address)
    claimed_until: dt.datetime | None = None

    def hold(first: bool = False) -> bool:
        nonlocal claimed_until
        moment = now()
        if claimed_until is not None and moment < claimed_until - lease / 2:
            return True
        with db.session(write=True) as session:  # a job started before runners had rows: give it one
            if session.get(BulkResendRunner, job_id) is None:
                session.add(BulkResendRunner(job_id=job_id, owner="", expires_at=moment))
        if not claim(db, job_id, owner, now=moment, lease=lease, take_over=take_over and first):
            return False
        claimed_until = moment + lease
        return True

    if job.finished:
        _let_go(db, job_id, owner, finished=True, now=now())
        return job
    if not hold(first=True):
        return job
    gap = 60.0 / job.per_minute if job.per_minute else 0.0
    _keep_the_rate(db, job_id, gap, now=now, sleep=sleep)
    handled = 0
    for first in range(0, len(job.user_ids), BATCH_SIZE):
        batch = job.user_ids[first : first + BATCH_SIZE]
        for user_id in batch:
            with db.session() as session:
                if _paused(session, job_id):
                    kick()
                    _let_go(db, job_id, owner, finished=False, now=now())
                    return status(session, job_id)
                if already_done(session, _key(job_id, user_id)) is not None:
                    continue
                runner = session.get(BulkResendRunner, job_id)
                if runner is None or runner.owner != owner:  # someone took the job over (Continue, `--job`)
                    kick()
                    return status(session, job_id)
            if stop_after is not None and handled >= stop_after:
                kick()
                return current_status(db, job_id)
            if not hold():  # lost the lease (this process stalled past it): the new holder goes on
                return current_status(db, job_id)
            _resend_one(db, actor, job, user_id, now())
            handled += 1
            if gap:
                sleep(gap)
        kick()
        on_progress(current_status(db, job_id))
    final = current_status(db, job_id)
    _let_go(db, job_id, owner, finished=final.finished, now=now())
    return final


def unattended(db: Database, *, now: dt.datetime) -> list[str]:
    """Unfinished jobs whose runner died (lease expired) and that nobody paused: the ones to continue."""
    with db.session() as session:
        expired = list(session.scalars(select(BulkResendRunner.job_id).where(BulkResendRunner.expires_at <= now)))
        return [job_id for job_id in expired if not _paused(session, job_id)]


def _keep_the_rate(
    db: Database, job_id: str, gap: float, *, now: Callable[[], dt.datetime], sleep: Callable[[float], None]
) -> None:
    """Before a runner's first user, wait out the gap since the job's last re-send (by any runner).

    Why: a runner that takes the job over (Continue, `--job`, a dispatch tick)
    would otherwise send at once, and pressing Continue again and again would
    send faster than the job's rate. (Audit times are whole seconds: close enough
    for a rate counted per minute.)
    """
    if not gap:
        return
    with db.session() as session:
        last = session.scalar(
            select(func.max(AuditEvent.at)).where(
                AuditEvent.request_key.like(f"bulk:{job_id}:%"), AuditEvent.action == "archive.resend"
            )
        )
    if last is not None and (wait := (last - now()).total_seconds() + gap) > 0:
        sleep(min(wait, gap))


def current_status(db: Database, job_id: str) -> JobStatus:
    """The job's status read in a session of its own (sees every commit so far, e.g. the runner's)."""
    with db.session() as session:
        return status(session, job_id)


def _resend_one(db: Database, actor: Actor, job: JobStatus, user_id: int, now: dt.datetime) -> None:
    """Queue one user's re-send, or record why not (so the job counts them done and never retries them)."""
    suffix = f" (bulk re-send {job.job_id})"  # the reason may already be the longest allowed: make room
    key, reason = _key(job.job_id, user_id), job.reason[: MAX_REASON - len(suffix)].rstrip() + suffix
    with db.session() as session:
        archive = latest_archive(session, user_id)
        archive_id = archive.id if archive is not None else ""
    try:
        support_actions.resend_archive(
            db, actor, user_id, archive_id, "destinations", reason=reason, request_key=key, now=now
        )
    except (ActionRefused, UnknownTarget) as exc:
        with db.session(write=True) as session:
            if already_done(session, key) is None:
                record(
                    session,
                    actor,
                    SKIPPED,
                    now=now,
                    target=session.get(User, user_id),
                    reason=reason,
                    outcome="refused",
                    detail={"job_id": job.job_id, "message": str(exc)},
                    request_key=key,
                )


def run_in_background(app: Flask, job_id: str, *, take_over: bool = False) -> None:
    """Run the job in a thread of this process (the console's and the API's "Start" and "Resume").

    Why a plain thread is enough: the job is restart-safe and leased, so if
    this process ends midway nothing is lost or doubled, and the next dispatch
    tick of any process continues it (`continue_unattended`) once the lease
    expires. `take_over`: a person asked to continue now (see `claim`).
    `app.extensions[INLINE]` set (tests) runs it in the caller instead.
    """
    from jobs import get_context, kick

    def work() -> None:
        with app.app_context():
            ctx = get_context(app)
            try:
                run(
                    ctx.db,
                    job_id,
                    now=ctx.clock,
                    kick=lambda: kick(app),
                    lease=ctx.lease,
                    take_over=take_over,
                )
            except Exception:  # a thread's exception would vanish: log it; the next tick continues the job
                LOG.exception("bulk re-send %s stopped", job_id)
                if app.extensions.get(INLINE):
                    raise

    if app.extensions.get(INLINE):
        work()
    else:
        threading.Thread(target=work, name=f"bulk-resend-{job_id}", daemon=True).start()


def continue_unattended(app: Flask) -> list[str]:
    """Start a runner for each job whose runner died; called by every dispatch tick (a tiny table: cheap)."""
    from jobs import get_context

    ctx = get_context(app)
    waiting = unattended(ctx.db, now=ctx.clock())
    for job_id in waiting:
        LOG.info("continuing bulk re-send %s: its runner stopped", job_id)
        run_in_background(app, job_id)
    return waiting
