"""A user's archives as the archives pages and the JSON API list them: where each went, when it expires.

Why here: "where was it delivered" is an archive's runs' delivery attempts
(the destination's label and the outcome), and "when does it expire" is the
retention rule of `jobs.housekeeping.expire_archives`; both are questions
about runs and policy that `store` must not answer and `web` should not
re-derive. Every query is scoped to one user, a page at a time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.copy_checks import CopyCheck, checks_of_copies
from store import Archive, DeliveryAttempt, Destination, ExportRun

_OUTCOME_WORDS = {"delivered": "Delivered", "transient": "Not yet delivered (retrying)", "permanent": "Failed"}


@dataclass(frozen=True)
class Delivered:
    """The last word on one destination of an archive: its label, the outcome, when."""

    label: str
    outcome: str  # delivered, transient, permanent
    outcome_label: str
    at: dt.datetime
    message: str
    # The latest later check of this copy (`jobs.scrub`): "Delivered" alone beside a copy since found
    # missing or changed was a lie (user trial). None: not checked (or not delivered there).
    check: CopyCheck | None = None


@dataclass(frozen=True)
class ArchivePage:
    archives: list[Archive]
    page: int
    pages: int
    total: int


def archive_page(session: Session, user_id: int, *, page: int, per_page: int = 20) -> ArchivePage:
    """The user's archives that still exist, newest first, page `page` (from 1; past the end: the last)."""
    live = (Archive.user_id == user_id, Archive.deleted_at.is_(None))
    total = int(session.scalar(select(func.count()).select_from(Archive).where(*live)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.scalars(
        select(Archive)
        .where(*live)
        .order_by(Archive.created_at.desc(), Archive.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return ArchivePage(archives=list(rows), page=page, pages=pages, total=total)


def own_archive(session: Session, archive_id: str, user_id: int) -> Archive | None:
    """The user's archive (deleted ones included), or None: someone else's answers like a missing one."""
    archive = session.get(Archive, archive_id) if len(archive_id) <= 32 else None
    return archive if archive is not None and archive.user_id == user_id else None


def deliveries(session: Session, archive_ids: Iterable[str]) -> dict[str, list[Delivered]]:
    """Where each archive went: per destination, the latest attempt of the runs that produced it.

    A destination removed since is named by where the archive went (its
    recorded location) or as "a removed destination".
    """
    ids = list(archive_ids)
    found: dict[str, dict[object, tuple[Delivered, tuple[int, str] | None]]] = defaultdict(dict)
    if not ids:
        return {}
    rows = session.execute(
        select(ExportRun.archive_id, DeliveryAttempt, Destination.label)
        .join(DeliveryAttempt, DeliveryAttempt.run_id == ExportRun.id)
        .outerjoin(Destination, Destination.id == DeliveryAttempt.destination_id)
        .where(ExportRun.archive_id.in_(ids))
        .order_by(DeliveryAttempt.at, DeliveryAttempt.id)
    )
    for archive_id, attempt, label in rows:
        if archive_id is None:  # not possible under the WHERE; the column is nullable
            continue
        key = attempt.destination_id if attempt.destination_id is not None else attempt.location
        delivered = Delivered(  # later attempts replace earlier ones
            label=label or attempt.location or "a removed destination",
            outcome=attempt.outcome,
            outcome_label=_OUTCOME_WORDS.get(attempt.outcome, attempt.outcome),
            at=attempt.at,
            message=attempt.message,
        )
        copy = None  # which copy a later check may have looked at: one delivered to a destination still set
        if attempt.outcome == "delivered" and attempt.destination_id is not None:
            copy = (attempt.destination_id, attempt.run_id)
        found[archive_id][key] = (delivered, copy)
    checks = checks_of_copies(session, (copy for by_key in found.values() for _, copy in by_key.values() if copy))
    return {
        archive_id: [replace(d, check=checks.get(copy)) if copy else d for d, copy in by_key.values()]
        for archive_id, by_key in found.items()
    }


def newest_verified_at(session: Session, user_id: int) -> dt.datetime | None:
    """When the user's newest verified, still stored archive was made: retention keeps it and anything newer."""
    return session.scalar(
        select(func.max(Archive.created_at)).where(
            Archive.user_id == user_id, Archive.verified_at.is_not(None), Archive.deleted_at.is_(None)
        )
    )


def expires_at(archive: Archive, newest_verified: dt.datetime | None, keep_days: int) -> dt.datetime | None:
    """When housekeeping will delete the archive; None while it is kept whatever its age.

    The rule is `jobs.housekeeping.expire_archives`': older than ARCHIVE_RETENTION_DAYS
    and older than the user's newest verified archive (which is always kept, and
    without one nothing is deleted). An explicit `expires_at` on the row wins.
    """
    if archive.expires_at is not None:
        return archive.expires_at
    if newest_verified is None or archive.created_at >= newest_verified:
        return None
    return archive.created_at + dt.timedelta(days=keep_days)
