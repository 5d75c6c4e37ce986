"""What the later checks (`jobs.scrub`) last found about each destination's delivered copy, for pages and the API.

Why a reader of its own: scrub writes its finding beside the destination
(`DestinationCheck`), emails the user and lists it for support, but the pages
kept showing the delivery's "Working … the MD5 ETag match" and "Delivered" after
a check found the copy changed or the bucket gone (user trial). Every page that
says where a copy is (settings → destinations, the archive's page, the
overview) and the API read the finding here, so they say the same words.

A finding stands for the copy it looked at. It stops being the destination's
news when a later delivery there put a fresh, verified copy in place (the next
check looks at that one); on the delivered archive's own page it stays, since
that copy is still as the check found it. That rule is `standing()`, one SQL
condition that the user's pages (here) and the support queue (`jobs.support_queue`)
both use, so support never chases a finding the user no longer sees (user trial).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, aliased

from delivery.s3.inspection import CHANGED, HEALTHY, MISSING, UNREADABLE, UNWRITABLE
from jobs.scrub import BAD, ERROR, FIX_WORDS
from store import DeliveryAttempt, Destination, DestinationCheck, ExportRun

# A bad finding as its badge says it.
PROBLEM_WORDS = {
    MISSING: "Copy missing",
    CHANGED: "Copy changed",
    UNREADABLE: "Copy unreadable",
    UNWRITABLE: "Refuses new archives",
}


@dataclass(frozen=True)
class CopyCheck:
    """The latest later check of one destination's delivered copy, in words."""

    destination_id: int
    label: str
    run_id: str | None  # the run that delivered the copy checked
    object_key: str
    state: str  # healthy, missing, changed, unreadable, unwritable, error (`jobs.scrub.STATES`)
    detail: str  # what the check found, in its words
    checked_at: dt.datetime
    since: dt.datetime  # when a check first found this state
    current: bool  # no delivery there since: this is the destination's newest copy

    @property
    def bad(self) -> bool:
        """The copy is missing, changed or unreadable, or the bucket refuses new archives."""
        return self.state in BAD

    @property
    def copy_bad(self) -> bool:
        """The copy itself is missing, changed or unreadable ("unwritable": it is there, new ones cannot be)."""
        return self.state in BAD and self.state != UNWRITABLE

    @property
    def words(self) -> str:
        """`Copy missing`, `Copy changed`; `Checked again` when healthy, `Not checked` when the check failed."""
        if self.state == HEALTHY:
            return "Checked again"
        if self.state == ERROR:
            return "Could not check again"
        return PROBLEM_WORDS.get(self.state, self.state.capitalize())

    @property
    def what_to_do(self) -> str:
        """The fix, as the scrub's email gives it; "" when nothing is wrong with the copy."""
        return FIX_WORDS.get(self.state, "")

    @property
    def sentence(self) -> str:
        """`Copy missing: <the check's words>.` — the whole finding on one line (API status_message, support)."""
        detail = self.detail.rstrip(".")
        return f"{self.words}: {detail}." if detail else f"{self.words}."


def copy_checks(session: Session, user_id: int) -> dict[int, CopyCheck]:
    """The user's destinations' latest checks by destination id; none for one never checked (or mid-check)."""
    rows = session.execute(
        select(DestinationCheck, Destination.label, standing().label("current"))
        .join(Destination, Destination.id == DestinationCheck.destination_id)
        .where(Destination.user_id == user_id, DestinationCheck.state != "checking")
    ).all()
    return {check.destination_id: _view(check, label, current=bool(current)) for check, label, current in rows}


def standing() -> ColumnElement[bool]:
    """SQL: this `DestinationCheck` still stands for its destination: it looked at the newest copy delivered there.

    False (or NULL) once a later run delivered to the destination: that put a
    fresh, verified copy in place, and the next check looks at that one. A
    later check that finds the copy good replaces the row itself. For a query
    that joins `DestinationCheck` and its `Destination`.

    Why through the user's runs: delivery attempts are indexed by run, not by
    destination, and a destination only gets its own user's runs.
    """
    attempt, run = aliased(DeliveryAttempt), aliased(ExportRun)
    newest = (
        select(attempt.run_id)
        .join(run, run.id == attempt.run_id)
        .where(
            run.user_id == Destination.user_id,
            attempt.destination_id == DestinationCheck.destination_id,
            attempt.outcome == "delivered",
        )
        .order_by(attempt.id.desc())
        .limit(1)
        .correlate(Destination, DestinationCheck)
        .scalar_subquery()
    )
    return or_(newest.is_(None), newest == DestinationCheck.run_id)


def _view(check: DestinationCheck, label: str, *, current: bool) -> CopyCheck:
    return CopyCheck(
        destination_id=check.destination_id,
        label=label,
        run_id=check.run_id,
        object_key=check.object_key,
        state=check.state,
        detail=check.detail,
        checked_at=check.checked_at,
        since=check.since or check.checked_at,
        current=current,
    )


def checks_of_copies(session: Session, copies: Iterable[tuple[int, str]]) -> dict[tuple[int, str], CopyCheck]:
    """The latest check of each (destination id, delivering run id) copy that was checked: an archive's page.

    Why whether or not a delivery came since: that delivery put a new copy in
    place, and this one is still as the check found it.
    """
    wanted = set(copies)
    if not wanted:
        return {}
    rows = session.execute(
        select(DestinationCheck, Destination.label)
        .join(Destination, Destination.id == DestinationCheck.destination_id)
        .where(
            DestinationCheck.destination_id.in_({d for d, _ in wanted}),
            DestinationCheck.run_id.in_({r for _, r in wanted}),
            DestinationCheck.state != "checking",
        )
    ).all()
    found = {}
    for check, label in rows:
        key = (check.destination_id, check.run_id)
        if check.run_id is not None and key in wanted:
            found[(check.destination_id, check.run_id)] = _view(check, label, current=True)
    return found


def current_problems(session: Session, user_id: int) -> list[CopyCheck]:
    """The bad findings still standing (no delivery since), oldest first: what the overview warns about."""
    found = [c for c in copy_checks(session, user_id).values() if c.bad and c.current]
    return sorted(found, key=lambda c: (c.since, c.destination_id))


__all__ = ["PROBLEM_WORDS", "CopyCheck", "checks_of_copies", "copy_checks", "current_problems", "standing"]
