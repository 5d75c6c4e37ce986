"""Scrub: check again, weeks after delivery, that each user's newest delivered archive is still there as it arrived.

Why: a delivery proves the copy arrived; the Sidekick users needed proof that it
was *still* there. Each S3 destination's newest delivered archive is looked at
again from its receipt (`delivery.s3.inspection`): a HEAD of the recorded
version every `LIGHT_EVERY`, a full streamed download hashed against the
archive's SHA-256 every `DEEP_EVERY`. Whatever is found is written beside the
destination (`DestinationCheck`, what pages show) and as a line in the history
of the run that delivered it, a warning when the copy is missing, changed or
unreadable.

Bounded and resumable: each call takes at most `limit` destinations, at most
`PER_BUCKET` of them in one bucket, oldest check first; each is claimed with a
conditional write (several scheduler processes may scrub at once, and each
destination is checked by one of them), and its row is written as soon as it is
checked, so a scrub killed half-way resumes with the ones it had not reached.
Network calls happen outside any transaction.

Each check also writes, reads back and deletes a small probe object, as the
destination test does: a bucket that no longer accepts writes is "unwritable"
while the copy is still there, before the next export fails to arrive.

A check this process's own settings refuse (an endpoint outside
LIFEBOAT_ENDPOINT_ALLOW_LIST: `REFUSED_HERE`) says nothing about the copy and is
nothing the user can fix: it is logged for the operator and recorded nowhere
(a user trial ran `lifeboat scrub` without the server's allow list and stored
`error` on the user's destination; `jobs.refused_here`, which `lifeboat
destination test` shares). The claim alone stays, so the destination
falls due again after `CLAIM_HOLD`.

When a copy turns missing, changed, unreadable or unwritable the user is emailed once
(`tell`), and the support queue lists it (`copy_damaged`) until a check finds
it healthy again.

Why a deep read is hashed rather than parsed again: what is compared is the
SHA-256 of every byte in the bucket with the digest of the archive that was
verified (checksums, signature, independent parsers) before it left, so a
match is that archive byte for byte, and a parse would only repeat what the
export's verification found. A sealed archive could not be parsed here anyway:
only its owner's key opens it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.s3 import S3Delivery
from delivery.s3.inspection import CHANGED, HEALTHY, MISSING, UNREADABLE, UNWRITABLE, Delivered, Health
from errors import DeliveryError, LifeboatError
from jobs import run_lifecycle as runs
from jobs.context import JobContext
from jobs.refused_here import REFUSED_HERE, SETTING, for_the_operator, refusal
from store import Archive, Database, DeliveryAttempt, Destination, DestinationCheck, ExportRun, User

log = logging.getLogger("lifeboat.scrub")

LIGHT_EVERY = dt.timedelta(days=7)  # a HEAD of each destination's newest archive
DEEP_EVERY = dt.timedelta(days=30)  # a full download of it, hashed
LIMIT = 50  # destinations per call (a scheduler tick)
PER_BUCKET = 10  # of them in any one bucket, so one user's store is never hammered
# A claim holds a destination this long: if its scrubber dies before writing the result, it is due again then.
CLAIM_HOLD = dt.timedelta(hours=1)
ERROR = "error"  # the check itself failed (network, credentials): says nothing about the copy
STATES = (HEALTHY, MISSING, CHANGED, UNREADABLE, UNWRITABLE, ERROR)
BAD = (MISSING, CHANGED, UNREADABLE, UNWRITABLE)  # what the user is emailed about, once per turn for the worse
FIX_WORDS = {
    MISSING: "Lifeboat's own copy is untouched; export now to put a fresh archive in the bucket, and check who "
    "can delete objects there (a lifecycle rule, another tool, a leaked key).",
    CHANGED: "Something rewrote it after delivery. Export now to put a fresh archive there, and find out what "
    "writes to that folder; S3 Object Lock (destination settings) keeps past archives from being changed.",
    UNWRITABLE: "Your delivered archive is still there, but the next one cannot be: test the destination, and "
    "check that the key or role Lifeboat uses still has s3:PutObject and the bucket has room.",
    UNREADABLE: "The key or role Lifeboat uses may no longer read the bucket. Test the destination, and give it "
    "s3:GetObject on the archives again.",
}


@dataclass(frozen=True)
class Target:
    """One destination to check now: what was delivered there, by which run, and how deep to look."""

    destination_id: int
    user_id: int
    run_id: str
    delivered: Delivered
    deep: bool
    last_checked: dt.datetime | None  # the claim's condition
    last_state: str | None = None  # what the check before found: a user is told when it turns bad, not weekly


@dataclass(frozen=True)
class Finding:
    """One destination's check: its state (`delivery.s3.inspection` or `ERROR`) and the words."""

    destination_id: int
    user_id: int
    run_id: str
    state: str
    detail: str
    deep: bool

    @property
    def line(self) -> str:
        """The history line: what was checked and found."""
        how = "read in full" if self.deep else "looked up"
        if self.state == HEALTHY:
            return f"Checked again ({how}): {self.detail}."
        if self.state == ERROR:
            return f"Could not check the delivered archive again: {self.detail}"
        if self.state == REFUSED_HERE:
            return f"Not checked, and nothing recorded for the user: {for_the_operator(self.detail, 'scrub')}"
        return f"Checked again ({how}): {self.state.upper()}. {self.detail}."


def due(
    session: Session, *, now: dt.datetime, limit: int = LIMIT, email: str | None = None, deep: bool | None = None
) -> list[Target]:
    """The destinations to check now, oldest check first (all of `email`'s if given); `PER_BUCKET` a bucket at most."""
    query = (
        select(Destination, DestinationCheck)
        .join(User, User.id == Destination.user_id)
        .outerjoin(DestinationCheck, DestinationCheck.destination_id == Destination.id)
        .where(Destination.kind == "s3", Destination.enabled.is_(True), User.is_active.is_(True))
        .order_by(DestinationCheck.checked_at.is_not(None), DestinationCheck.checked_at, Destination.id)
    )
    if email is not None:
        # As `store.accounts.find_user` matches it: the command found the user that way.
        query = query.where(func.lower(User.email) == email.strip().lower())
    else:
        query = query.where(or_(DestinationCheck.checked_at.is_(None), DestinationCheck.checked_at < now - LIGHT_EVERY))
    targets: list[Target] = []
    per_bucket: dict[tuple[str, str], int] = {}
    for destination, check in session.execute(query.limit(limit * 4)):
        if len(targets) >= limit:
            break
        settings = destination.settings
        bucket = (str(settings.get("endpoint_url") or ""), str(settings.get("bucket") or ""))
        if per_bucket.get(bucket, 0) >= PER_BUCKET:
            continue
        newest = _newest_delivered(session, destination.id)
        if newest is None:
            continue  # nothing delivered there yet: nothing to check
        attempt, archive = newest
        assert attempt.object_key is not None  # selected so
        deep_now = (
            deep
            if deep is not None
            else (check is None or not check.deep_checked_at or check.deep_checked_at < now - DEEP_EVERY)
        )
        # A sealed delivery's object is the ciphertext: checked against its own digest and size.
        size, sha256 = (
            (attempt.sealed_size, attempt.sealed_sha256)
            if attempt.sealed_sha256 and attempt.sealed_size is not None
            else (archive.size, archive.sha256)
        )
        delivered = Delivered(attempt.object_key, size, sha256, attempt.etag, attempt.version_id)
        last = check.checked_at if check is not None else None
        last_state = check.state if check is not None else None
        target = Target(destination.id, destination.user_id, attempt.run_id, delivered, deep_now, last, last_state)
        targets.append(target)
        per_bucket[bucket] = per_bucket.get(bucket, 0) + 1
    return targets


def _newest_delivered(session: Session, destination_id: int) -> tuple[DeliveryAttempt, Archive] | None:
    row = session.execute(
        select(DeliveryAttempt, Archive)
        .join(ExportRun, ExportRun.id == DeliveryAttempt.run_id)
        .join(Archive, Archive.id == ExportRun.archive_id)
        .where(
            DeliveryAttempt.destination_id == destination_id,
            DeliveryAttempt.outcome == "delivered",
            DeliveryAttempt.object_key.is_not(None),
        )
        .order_by(DeliveryAttempt.at.desc(), DeliveryAttempt.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def claim(database: Database, target: Target, *, now: dt.datetime) -> bool:
    """Take `target` for this process: True for exactly one of several scrubbers that saw it due.

    The claim dates the check so that it falls due again `CLAIM_HOLD` from now
    (`record` then dates it now): a scrubber killed mid-check loses nothing.
    """
    held = now - LIGHT_EVERY + CLAIM_HOLD
    with database.session(write=True) as session:
        if target.last_checked is None:
            first = insert(DestinationCheck).values(
                destination_id=target.destination_id,
                object_key=target.delivered.key,
                run_id=target.run_id,
                state="checking",
                detail="",
                checked_at=held,
            )
            try:
                with session.begin_nested():  # on PostgreSQL two first checks race to this insert
                    session.execute(first)
            except IntegrityError:
                return False  # another scrubber wrote the first check meanwhile
            return True
        moved = session.execute(
            update(DestinationCheck)
            .where(
                and_(
                    DestinationCheck.destination_id == target.destination_id,
                    DestinationCheck.checked_at == target.last_checked,
                )
            )
            .values(checked_at=held)
        )
        return bool(getattr(moved, "rowcount", 0) == 1)


def check(ctx: JobContext, target: Target) -> Health:
    """Look at the object now, through the same backends deliveries use; a failed check is `ERROR`, never healthy."""
    with ctx.db.session() as session:
        user = session.get(User, target.user_id)
        backends = dict(ctx.destinations(session, user)) if user is not None else {}
    backend = backends.get(target.destination_id)
    if backend is None:
        return Health(ERROR, "the destination was removed or switched off meanwhile")
    if not isinstance(backend, S3Delivery):
        return Health(ERROR, "its settings can no longer be used; test the destination on the destinations page")
    try:
        with backend:
            return backend.inspect(target.delivered, deep=target.deep, writes=True)
    except DeliveryError as exc:
        here = refusal(exc)  # this process's settings refused it (`jobs.refused_here`)
        return Health(ERROR, exc.user_message) if here is None else Health(REFUSED_HERE, here)
    except LifeboatError as exc:
        return Health(ERROR, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def record(database: Database, target: Target, health: Health, *, now: dt.datetime) -> Finding:
    """Write what was found beside the destination and into the delivering run's history (see `tell` too)."""
    finding = Finding(target.destination_id, target.user_id, target.run_id, health.state, health.detail, target.deep)
    with database.session(write=True) as session:
        values: dict[str, object] = {
            "object_key": target.delivered.key,
            "run_id": target.run_id,
            "state": health.state,
            "detail": health.detail,
            "checked_at": now,
        }
        if target.deep and health.state != ERROR:
            values["deep_checked_at"] = now
        # "Missing since …": dated when the state turns; a check that could not look (ERROR) keeps the date.
        if health.state != ERROR and health.state != target.last_state:
            values["since"] = now
        session.execute(
            update(DestinationCheck).where(DestinationCheck.destination_id == target.destination_id).values(**values)
        )
        level = "info" if health.state == HEALTHY else "warning"
        runs.add_event(session, target.run_id, "scrub", finding.line, at=now, level=level)
    if health.state != HEALTHY:
        log.warning(
            "scrub found a problem",
            extra={"user_id": target.user_id, "destination_id": target.destination_id, "state": health.state},
        )
    return finding


def scrub(
    ctx: JobContext,
    *,
    now: dt.datetime | None = None,
    email: str | None = None,
    deep: bool | None = None,
    limit: int = LIMIT,
    tell_operator: Callable[[Finding], None] | None = None,
) -> list[Finding]:
    """Check the due destinations (or all of `email`'s) now; what each check found, in order.

    `tell_operator` is handed each `REFUSED_HERE` finding (default: a warning in the log);
    `lifeboat scrub` says it in its own one line instead.
    """
    now = now or ctx.clock()
    with ctx.db.session() as session:
        targets = due(session, now=now, limit=limit, email=email, deep=deep)
    found = []
    for target in targets:
        if not claim(ctx.db, target, now=now):
            continue
        health = check(ctx, target)
        if health.state == REFUSED_HERE:
            finding = Finding(target.destination_id, target.user_id, target.run_id, REFUSED_HERE, health.detail, False)
            (tell_operator or _log_refusal)(finding)
            found.append(finding)
            continue
        finding = record(ctx.db, target, health, now=now)
        if finding.state in BAD and finding.state != target.last_state:
            tell(ctx, finding, now=now)
        found.append(finding)
    return found


def _log_refusal(finding: Finding) -> None:
    log.warning(
        "scrub refused by this process's endpoint settings; nothing recorded",
        extra={"user_id": finding.user_id, "destination_id": finding.destination_id, "setting": SETTING},
    )


def _said(state: str) -> str:
    """What a check found, as the email's sentence ends: "it is missing", or what unwritable means."""
    if state == UNWRITABLE:
        return "it is still there, but the bucket refused a new object"
    return f"it is {state}"


def tell(ctx: JobContext, finding: Finding, *, now: dt.datetime) -> None:
    """Email the user that their copy went bad (once per turn for the worse) and note it in the run's history.

    A mail that cannot be sent is logged; the finding stays in the history and
    the support queue (`jobs.support_queue`, kind `copy_damaged`) either way.
    """
    with ctx.db.session() as session:
        user = session.get(User, finding.user_id)
        destination = session.get(Destination, finding.destination_id)
        if user is None or destination is None:
            return
        email, label = user.email, destination.label
    base = ctx.base_url.rstrip("/")
    text = (
        "Hello,\n\n"
        f"Lifeboat checked your delivered archive in {label} again, and {_said(finding.state)}:\n"
        f"{finding.detail}.\n\n"
        f"What to do: {FIX_WORDS[finding.state]}\n\n"
        f"Your destinations: {base}/settings/destinations\nExport now: {base}/\n\n"
        "Lifeboat checks every delivered copy again each week and reads it in full each month.\n"
    )
    try:
        subject = (
            f"Lifeboat: {label} no longer accepts new archives"
            if finding.state == UNWRITABLE
            else f"Lifeboat: your archive in {label} is {finding.state}"
        )
        emailed = ctx.send_notice(email, subject, text) is not False
    except Exception:
        log.warning("could not email a scrub finding", extra={"user_id": finding.user_id}, exc_info=True)
        emailed = False
    line = "Emailed to the account's address." if emailed else "Could not be emailed (no mail server, or it refused)."
    with ctx.db.session(write=True) as session:
        runs.add_event(session, finding.run_id, "scrub", line, at=now, level="warning")


__all__ = [
    "BAD",
    "DEEP_EVERY",
    "ERROR",
    "LIGHT_EVERY",
    "REFUSED_HERE",
    "STATES",
    "Finding",
    "Target",
    "claim",
    "due",
    "record",
    "scrub",
    "tell",
]
