"""Find a user by what a caller quotes, and gather what support may see of them: metadata, never content.

Why here and not in the views: the console's pages and the staff API answer
"who is this?" and "what happened?" from the same rows. What is gathered is
the account's state, schedule, destinations (secrets masked by
`jobs.destination_setup`), runs with their history lines and delivery
attempts, and archives' size, counts and checksums. No contact, event or note
row is read here, and no download link is made.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from jobs.destination_backends import Registry
from jobs.destination_setup import DestinationView, describe_destinations
from jobs.user_schedule import describe, find_schedule
from store import Archive, ExportRun, Schedule, User
from store.base import is_row_id

SHA256_PREFIX_MIN = 8
RUN_COUNT = 20
ARCHIVE_COUNT = 20
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class UserHit:
    """One user found: enough to pick the right one, nothing more."""

    id: int
    email: str
    role: str
    is_active: bool
    confirmed: bool

    @property
    def state(self) -> str:
        return "active" if self.is_active else "closed"


def find_users(session: Session, query: str, *, limit: int = 50) -> list[UserHit]:
    """Users (not staff) matching `query`: email prefix (any case), user id, run id, or archive SHA-256 (8+ digits)."""
    text = query.strip().lower()
    if not text:
        return []
    ids: set[int] = set()
    if text.isdigit() and len(text) < 19 and is_row_id(int(text)):
        ids.add(int(text))
    if len(text) == 36 and text.count("-") == 4 and _HEX.match(text.replace("-", "")):
        text = text.replace("-", "")  # a run id written as a UUID (8-4-4-4-12), as some tools print it
    if _HEX.match(text):
        if len(text) == 32:
            ids.update(session.scalars(select(ExportRun.user_id).where(ExportRun.id == text)))
        if SHA256_PREFIX_MIN <= len(text) <= 64:
            ids.update(session.scalars(select(Archive.user_id).where(Archive.sha256.like(f"{text}%")).limit(limit)))
    prefix = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    by_email = func.lower(User.email).like(prefix, escape="\\")
    matches = User.id.in_(ids) | by_email if ids else by_email
    # Staff accounts are no support case (their pages answer 404): finding them would only lead there.
    found = select(User).where(matches, User.role == "user").order_by(User.email).limit(limit)
    return [
        UserHit(u.id, u.email, u.role, u.is_active, u.email_confirmed_at is not None) for u in session.scalars(found)
    ]


@dataclass(frozen=True)
class UserSummary:
    """What support sees of one user; runs carry their history lines (stage timings) and archive rows."""

    user: User
    schedule: Schedule | None
    schedule_line: str
    paused: bool
    destinations: list[DestinationView]
    runs: list[ExportRun]
    run_total: int
    archives: list[Archive]


def user_summary(session: Session, registry: Registry, user_id: int, *, runs: int = RUN_COUNT) -> UserSummary | None:
    """The user's summary, or None if there is no such user (ids beyond 64 bits name nobody)."""
    user = session.get(User, user_id) if is_row_id(user_id) else None
    if user is None:
        return None
    schedule = find_schedule(session, user)
    latest = list(
        session.scalars(
            select(ExportRun)
            .where(ExportRun.user_id == user.id)
            .options(selectinload(ExportRun.history), selectinload(ExportRun.archive))
            .order_by(ExportRun.created_at.desc(), ExportRun.id.desc())
            .limit(runs)
        )
    )
    total = session.scalar(select(func.count()).select_from(ExportRun).where(ExportRun.user_id == user.id)) or 0
    archives = list(
        session.scalars(
            select(Archive)
            .where(Archive.user_id == user.id)
            .order_by(Archive.created_at.desc(), Archive.id.desc())
            .limit(ARCHIVE_COUNT)
        )
    )
    return UserSummary(
        user=user,
        schedule=schedule,
        schedule_line=describe(schedule),
        paused=schedule is not None and not schedule.enabled,
        destinations=describe_destinations(session, registry, user),
        runs=latest,
        run_total=total,
        archives=archives,
    )


def next_run_at(summary: UserSummary) -> dt.datetime | None:
    """When the schedule runs next (None: no schedule, or it is off)."""
    schedule = summary.schedule
    return schedule.next_run_at if schedule is not None and schedule.enabled else None
