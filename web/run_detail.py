"""A finished or running export in detail: how long each stage took, and each delivery with its receipt.

Why computed from the run's history lines: the executor writes a "stage" line
when a stage begins (`jobs.execute.Heartbeat`), the claim a "started" line per
attempt, and the end of an attempt its own line (retry, failed, delivered,
cancelled, requeued). A stage lasts until the next of these, so the timings
need no columns of their own and read the same on the page and in the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exporters.archive.changes import summary as changes_summary
from exporters.archive.differences import readback_summary
from jobs.run_lifecycle import STAGE_EVENT
from store import DeliveryAttempt, Destination, ExportFidelity, ExportRun, RunEvent, User
from web.destination_places import Waiting, waiting_words
from web.run_view import RunView, stage_words

# History lines that end an attempt, and so the stage that was going on.
_ENDS = frozenset({"retry", "failed", "delivered", "cancelled", "requeued"})
_REMOVED = "A destination since removed"
_OWN_ADDRESS = "Your account's email address (sent again by support)"  # a re-send "to email": no destination row
_OUTCOME_WORDS = {
    "delivered": "Delivered",
    "transient": "Failed; will be retried",
    "permanent": "Failed",
}


@dataclass(frozen=True)
class EventLine:
    """One history line as the run's owner reads it."""

    at: dt.datetime
    level: str
    kind: str
    message: str


def owner_events(run: ExportRun, *, stages: bool = False) -> list[EventLine]:
    """The run's history lines in its owner's words; stage lines only if `stages` (the timings table shows them).

    Why rewritten here: the "resend" line is stored as staff read it ("… to
    their email address"), and support's pages show it that way; the user is
    told the same thing about their own account ("… to your email address"),
    from the run's own columns, so lines written by any build read the same.
    """
    lines = []
    for event in run.history:
        if event.kind == STAGE_EVENT and not stages:
            continue
        message = _resend_line(run) if event.kind == "resend" else event.message
        lines.append(EventLine(event.at, event.level, event.kind, message or event.message))
    return lines


def _resend_line(run: ExportRun) -> str | None:
    archive = run.archive
    if archive is None:
        return None
    where = "your email address" if run.resend_to == "email" else "your destinations"
    return f"Support re-sends archive {archive.filename} (SHA-256 {archive.sha256}) to {where}."


@dataclass(frozen=True)
class StageTiming:
    """One stage of one attempt: when it began and how many seconds it took (None: still going, or the end)."""

    attempt: int
    name: str
    label: str
    started_at: dt.datetime
    seconds: float | None


@dataclass(frozen=True)
class AttemptView:
    """One delivery attempt as the user sees it, with the destination's receipt."""

    at: dt.datetime
    destination: str
    destination_id: int | None
    outcome: str
    outcome_label: str
    location: str | None
    message: str
    object_key: str | None
    version_id: str | None
    etag: str | None
    message_id: str | None
    archive_sha256: str | None = None  # the archive file's SHA-256 as delivered (for `lifeboat verify --expect`)
    # Sealed to the user's key first: the key, and the delivered ciphertext's SHA-256 and size.
    sealed_to: str | None = None
    sealed_sha256: str | None = None
    sealed_size: int | None = None


@dataclass(frozen=True)
class FidelityView:
    """What the run's export read back and changed, as its owner reads it (API: `FidelitySchema`)."""

    items: int
    differences: int
    summary: str  # "Read back 1,234 items: 0 differences"
    difference_lines: list[str]
    changes: int
    changes_summary: str  # "0 changes: every item is carried exactly"
    change_lines: list[str]
    checked_at: dt.datetime
    method: str  # "full": every item parsed again; "memo": items proven by earlier drills were not
    skipped: int | None  # of `items`, proven by earlier drills and not parsed again (None: not kept then)
    read_again: int | None  # of `items`, parsed from the archive this time
    reading: str  # "12,000 items compared, 11,900 proven by earlier drills (100 read again)"; "" if not kept
    # The first differences as fields, in `difference_lines`' order ([] for runs checked before they were kept).
    difference_details: list[dict[str, str]]


def fidelity_view(session: Session, run_id: str) -> FidelityView | None:
    """The fidelity drill of the run's newest archive, or None if the run made none (or before the drill)."""
    row = session.scalar(
        select(ExportFidelity).where(ExportFidelity.run_id == run_id).order_by(ExportFidelity.id.desc()).limit(1)
    )
    return None if row is None else _fidelity(row)


def archive_fidelity(session: Session, archive_id: str) -> tuple[FidelityView, str | None] | None:
    """The fidelity drill of an archive and the run that made it (None: `lifeboat export`), or None before the drill.

    Why on the archive's page too: an archive made by `lifeboat export` has no run,
    so its page is the only place its owner can read what its read-back found.
    """
    row = session.scalar(
        select(ExportFidelity)
        .where(ExportFidelity.archive_id == archive_id)
        .order_by(ExportFidelity.id.desc())
        .limit(1)
    )
    return None if row is None else (_fidelity(row), row.run_id)


def _fidelity(row: ExportFidelity) -> FidelityView:
    skipped = None if row.skipped is None else min(row.skipped, row.items)
    return FidelityView(
        items=row.items,
        differences=row.differences,
        summary=readback_summary(row.items, row.differences),
        difference_lines=row.lines("differences"),
        changes=row.changes,
        changes_summary=changes_summary(row.changes),
        change_lines=row.lines("changes"),
        checked_at=row.checked_at,
        method=row.method,
        skipped=skipped,
        read_again=None if skipped is None else row.items - skipped,
        reading=reading_words(row.items, row.method, skipped),
        difference_details=row.described(),
    )


@dataclass(frozen=True)
class StaffReadback:
    """A run's read-back for staff: `words` holds counts and field names only; `differs` if any item differed."""

    words: str
    differs: bool


def staff_readback(session: Session, run_id: str) -> StaffReadback | None:
    """The run's read-back as staff may see it: counts, and the kinds and field names that differ, no values.

    None if the run made no archive (or made it before the drill). Why not the
    user's lines: they quote the user's data (`exporters.archive.differences`).
    """
    row = session.scalar(
        select(ExportFidelity).where(ExportFidelity.run_id == run_id).order_by(ExportFidelity.id.desc()).limit(1)
    )
    if row is None:
        return None
    words = readback_summary(row.items, row.differences)
    skipped = None if row.skipped is None else min(row.skipped, row.items)
    if skipped:
        words += f" ({skipped:,} proven by earlier drills)"
    if row.differences and row.difference_fields:
        words += f". Fields: {row.difference_fields}"
    return StaffReadback(words + ".", row.differences > 0)


def reading_words(items: int, method: str, skipped: int | None) -> str:
    """How much of the archive the drill parsed again, in words; "" for a drill that did not keep it.

    Why: a repeat export's drill parses only what earlier drills did not prove
    (`exporters.archive.drill_memo`), and a user comparing its time with the first
    export's should see why it is shorter: "12,000 items compared, 11,900 proven
    by earlier drills (100 read again)".
    """
    if skipped is None or not items:
        return ""
    compared = f"{items:,} item{'s' * (items != 1)} compared"
    if method != "memo":
        return f"{compared}, every one read again from the archive"
    if skipped == 0:
        return f"{compared}, every one read again (none proven by earlier drills)"
    if skipped == items:
        return f"{compared}, every one proven by earlier drills (the same bytes read back equal before)"
    return f"{compared}, {skipped:,} proven by earlier drills ({items - skipped:,} read again)"


def stage_timings(history: Iterable[RunEvent]) -> list[StageTiming]:
    """Each stage of each attempt, in order; a delivered run ends with a "done" stage of no duration."""
    timings: list[StageTiming] = []
    attempt = 0
    current: tuple[str, dt.datetime] | None = None

    def close(at: dt.datetime | None) -> None:
        nonlocal current
        if current is not None:
            name, began = current
            seconds = None if at is None else max(0.0, (at - began).total_seconds())
            timings.append(StageTiming(attempt, name, stage_words(name), began, seconds))
        current = None

    # Stage lines are written with the heartbeat after they happened: order by time (stable for ties).
    # Times read from the store are aware UTC (store.base.UTCDateTime).
    for event in sorted(history, key=lambda e: e.at):
        if event.kind == "started":
            close(event.at)
            attempt += 1
            current = ("starting", event.at)
        elif event.kind == STAGE_EVENT and attempt:
            close(event.at)
            current = (event.message, event.at)
        elif event.kind in _ENDS:
            close(event.at)
            if event.kind == "delivered":
                timings.append(StageTiming(attempt, "done", stage_words("done"), event.at, None))
    close(None)
    return timings


def attempt_views(session: Session, run_id: str) -> list[AttemptView]:
    """The run's delivery attempts, oldest first, each named by its destination's label."""
    attempts = list(
        session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == run_id).order_by(DeliveryAttempt.id))
    )
    ids = {a.destination_id for a in attempts if a.destination_id is not None}
    labels: dict[int, str] = {}
    if ids:
        named = select(Destination.id, Destination.label).where(Destination.id.in_(ids))
        labels = {key: label for key, label in session.execute(named)}
    unnamed = (
        _OWN_ADDRESS
        if session.scalar(select(ExportRun.resend_to).where(ExportRun.id == run_id)) == "email"
        else _REMOVED
    )
    return [
        AttemptView(
            at=a.at,
            destination=labels.get(a.destination_id or 0, unnamed),
            destination_id=a.destination_id,
            outcome=a.outcome,
            outcome_label=_OUTCOME_WORDS.get(a.outcome, a.outcome.capitalize()),
            location=a.location,
            message=a.message,
            object_key=a.object_key,
            version_id=a.version_id,
            etag=a.etag,
            message_id=a.message_id,
            archive_sha256=a.archive_sha256 if a.outcome == "delivered" else None,
            sealed_to=a.sealed_to if a.outcome == "delivered" else None,
            sealed_sha256=a.sealed_sha256 if a.outcome == "delivered" else None,
            sealed_size=a.sealed_size if a.outcome == "delivered" else None,
        )
        for a in attempts
    ]


def skipped_destinations(session: Session, run: ExportRun, user: User) -> list[Waiting]:
    """The destinations `run` did not send to because they waited for a confirmation, in their words now.

    Why from the run's own history: the executor wrote "Not sent to LABEL. ..." for each one it
    skipped (`jobs.destination_consent.waiting_destinations`), so a page names those of this run,
    not whichever wait today. A destination removed since is left out (its label is gone with it).
    """
    said = [event.message for event in run.history]
    rows = session.scalars(select(Destination).where(Destination.user_id == user.id).order_by(Destination.id))
    return [
        Waiting(row.label, waiting_words(row, user))
        for row in rows
        if any(f"Not sent to {row.label}. " in message for message in said)
    ]


def kept_here_words(view: RunView, skipped: list[Waiting]) -> tuple[str, str]:
    """(the outcome's words, the deliveries' words) of a delivered run that sent its archive nowhere.

    Why: with an email address waiting for its owner, the page said "Add a destination" and "No
    destination is set" (user trial); after the archive was deleted it still said "ready to download".
    """
    kept = (
        f"The archive was kept here only, and was deleted on {view.archive_deleted}."
        if view.archive_deleted
        else "The archive is kept here only."
    )
    if skipped:
        not_sent = "Not sent to " + "; ".join(w.line for w in skipped) + "."
        return f"{kept} {not_sent}", f"{not_sent} {kept}"
    where = (
        f"kept here only, and was deleted on {view.archive_deleted}"
        if view.archive_deleted
        else "kept here, ready to download"
    )
    return view.detail, f"No destination was set, so the archive was {where}."
