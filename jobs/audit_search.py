"""Read the audit trail: admins filter and export it; each user sees what support did on their account.

Why the user's view leaves out the staff member's address and the client
address: the user is told what was done and why, by support; who in
particular did it is for admins (the full log).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from errors import InvalidInput
from store import AuditEvent
from store.base import is_row_id
from store.staff import STAFF_ROLES

EXPORT_BATCH = 500
# What each action is called when the user reads it (unknown actions: the name, made readable).
ACTION_WORDS = {
    "view_user": "Looked at your account's export status (never your contacts, calendars or notes)",
    "resend_archive": "Re-sent an existing archive to your destinations",
    "resend": "Re-sent an existing archive to your destinations",
    "bulk_resend": "Re-sent an existing archive after a delivery outage",
    "export_now": "Started a fresh export",
    "pause_schedule": "Paused your export schedule",
    "resume_schedule": "Resumed your export schedule",
    "clear_destination_error": "Cleared a destination's error",
    "retest_destination": "Tested a destination again",
    "test_destination": "Tested a destination",
    "revoke_access": "Revoked all your download links and API tokens",
    "revoke_links_and_tokens": "Revoked all your download links and API tokens",
    # The names jobs.support_actions records (the console's and the staff API's actions).
    "archive.resend": "Re-sent an existing archive (the same file) to your destinations or your email",
    "export.start": "Started a fresh export",
    "schedule.pause": "Paused your export schedule",
    "schedule.resume": "Resumed your export schedule",
    "destination.retest": "Cleared a destination's error and tested it again",
    # Written by earlier builds, which recorded the test's outcome as a second row.
    "destination.retest.result": "Tested a destination again",
    "credentials.revoke": "Revoked all your download links and API tokens",
}
# What a refused action is called instead (nothing was changed): "Paused your export schedule … Refused"
# read as if it had been paused (trial 14).
REFUSED_WORDS = {
    "archive.resend": "Tried to re-send an archive; nothing was sent",
    "export.start": "Tried to start a fresh export; none was started",
    "schedule.pause": "Tried to pause your export schedule; it was not changed",
    "schedule.resume": "Tried to resume your export schedule; it was not changed",
    "destination.retest": "Tried to clear a destination's error and test it again; nothing was changed",
    "credentials.revoke": "Tried to revoke your download links and API tokens; nothing was revoked",
}
OUTCOME_WORDS = {
    "ok": "Done",
    "refused": "Refused",
    "failed": "Failed",
    "started": "Started",
    "already_running": "An export was already running",
}


def action_words(action: str, outcome: str = "ok") -> str:
    """What `action` did, as the user reads it; a refused one says it was tried and changed nothing."""
    if outcome == "refused":
        return REFUSED_WORDS.get(action, f"{action_words(action)} (not done)")
    return ACTION_WORDS.get(action, action.replace("_", " ").capitalize())


@dataclass(frozen=True)
class AuditFilter:
    """The admin's filters; None or "" leaves one out. `until` is exclusive."""

    actor: str | None = None  # an email prefix, or a user id
    target: str | None = None  # an email prefix, or a user id
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def parse_filter(args: Mapping[str, str], actions: Collection[str] | None = None) -> AuditFilter:
    """The filters from a query string (`actor`, `target`, `action`, `since`, `until` as YYYY-MM-DD, UTC days).

    `until` names the last day included. A malformed date, `since` after `until`, or an action
    not among `actions` (when given: `known_actions`) raises `InvalidInput` naming it and what
    to write instead. Why: `?action=bogus` and a range that ends before it starts answered
    "0 rows" with no word of why, as if nothing had happened (user trial).
    """
    problems: list[tuple[str, str]] = []
    action = (args.get("action") or "").strip() or None
    if action is not None and actions is not None and action not in actions:
        problems.append(("action", f"“{action}” is no action Lifeboat records: pick one from the list."))
    days: dict[str, dt.datetime | None] = {}
    for name in ("since", "until"):
        value = (args.get(name) or "").strip()
        try:
            day = dt.date.fromisoformat(value) if value else None
        except ValueError:
            problems.append((name, f"“{value}” is not a date: write it as YYYY-MM-DD, e.g. 2026-12-01."))
            day = None
        days[name] = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day is not None else None
    since, until = days["since"], days["until"]
    if since is not None and until is not None and since > until:
        problems.append(
            ("until", f"The range ends ({until:%Y-%m-%d}) before it starts ({since:%Y-%m-%d}): swap the two days.")
        )
    if problems:
        raise InvalidInput("A filter is not valid", problems)
    return AuditFilter(
        actor=(args.get("actor") or "").strip() or None,
        target=(args.get("target") or "").strip() or None,
        action=action,
        since=since,
        # The end of the day given; the last day there is (9999-12-31) has no next day: no bound then.
        until=until + dt.timedelta(days=1) if until is not None and until.date() < dt.date.max else None,
    )


def _who(id_column: Any, email_column: Any, value: str) -> Any:
    text = value.strip().lower()
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    by_email = func.lower(email_column).like(escaped, escape="\\")
    return (
        or_(id_column == int(text), by_email)
        if text.isdigit() and len(text) < 19 and is_row_id(int(text))
        else by_email
    )


def audit_query(filters: AuditFilter) -> Select[AuditEvent]:
    """The rows matching `filters`, newest first (ties by id, so pages and exports are stable)."""
    query = select(AuditEvent)
    if filters.actor:
        query = query.where(_who(AuditEvent.actor_id, AuditEvent.actor_email, filters.actor))
    if filters.target:
        query = query.where(_who(AuditEvent.target_user_id, AuditEvent.target_email, filters.target))
    if filters.action:
        query = query.where(AuditEvent.action == filters.action.strip())
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def audit_count(session: Session, filters: AuditFilter) -> int:
    return session.scalar(select(func.count()).select_from(audit_query(filters).order_by(None).subquery())) or 0


def audit_page(session: Session, filters: AuditFilter, *, limit: int, offset: int) -> list[AuditEvent]:
    return list(session.scalars(audit_query(filters).limit(limit).offset(offset)))


def audit_rows(session: Session, filters: AuditFilter) -> Iterator[AuditEvent]:
    """Every matching row, read in batches by keyset (an export of a large log never holds it all)."""
    last: tuple[dt.datetime, int] | None = None
    while True:
        query = audit_query(filters)
        if last is not None:
            at, row_id = last
            query = query.where(or_(AuditEvent.at < at, (AuditEvent.at == at) & (AuditEvent.id < row_id)))
        batch = list(session.scalars(query.limit(EXPORT_BATCH)))
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        last = (batch[-1].at, batch[-1].id)


def audit_actions(session: Session) -> list[str]:
    """The actions in the log, for the filter's choices."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def known_actions(session: Session) -> set[str]:
    """Every action a filter may name: those Lifeboat records (`ACTION_WORDS`) and any in the log."""
    return set(ACTION_WORDS) | set(audit_actions(session))


@dataclass(frozen=True)
class SupportAction:
    """One thing support did on the user's account, as the user reads it (no staff address)."""

    at: dt.datetime
    action: str
    what: str
    reason: str
    outcome: str
    outcome_label: str


# Support opening the user's page: recorded each time, shown to the user as one count (`support_views`).
VIEW_ACTION = "view_user"


def _on_account(user_id: int) -> Any:
    return (AuditEvent.target_user_id == user_id) & AuditEvent.actor_role.in_(STAFF_ROLES)


def support_actions(session: Session, user_id: int, *, limit: int = 50, offset: int = 0) -> list[SupportAction]:
    """Staff actions on `user_id`'s account, newest first, without the views (those are `support_views`).

    Why views apart: every console visit writes one, about two per action, and
    listed one by one they would bury what support actually did.
    """
    rows = session.scalars(
        select(AuditEvent)
        .where(_on_account(user_id), AuditEvent.action != VIEW_ACTION)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        SupportAction(
            at=row.at,
            action=row.action,
            what=action_words(row.action, row.outcome),
            reason=row.reason,
            outcome=row.outcome,
            outcome_label=OUTCOME_WORDS.get(row.outcome, row.outcome.capitalize()),
        )
        for row in rows
    ]


def support_action_count(session: Session, user_id: int) -> int:
    """How many staff actions (views left out) there are on the account: for the pager."""
    query = select(func.count()).select_from(AuditEvent).where(_on_account(user_id), AuditEvent.action != VIEW_ACTION)
    return session.scalar(query) or 0


@dataclass(frozen=True)
class SupportViews:
    """How often support looked at the account's status, and when last (None: never)."""

    count: int
    last_at: dt.datetime | None


def support_views(session: Session, user_id: int) -> SupportViews:
    query = select(func.count(), func.max(AuditEvent.at)).where(_on_account(user_id), AuditEvent.action == VIEW_ACTION)
    count, last_at = session.execute(query).one()
    if last_at is not None and last_at.tzinfo is None:
        last_at = last_at.replace(tzinfo=dt.UTC)  # an aggregate is not read through the column's type on SQLite
    return SupportViews(count or 0, last_at)
