"""What an export run looks like to its user: the stage in words, items done of total, the next attempt.

Why on the server: the dashboard renders this on first load and its script
polls the same words as JSON (`runs.run_status`), so a page that was left and
reopened shows exactly what the script would have shown, and the script only
copies text. The stage column carries items done of total when the exporter
knows them (`jobs.export.split_stage`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.export import split_stage
from store import Archive, DeliveryAttempt, ExportRun
from web.formatting import iso, local_time

ACTIVE = ("queued", "running", "retrying")
_STAGE_WORDS = {
    "starting": "Starting",
    "contacts": "Contacts",
    "calendars": "Calendars",
    "notes": "Notes",
    "readback": "Reading the archive back",
    "verified": "Checking the archive",
    "deliver": "Delivering",
    "done": "Done",
}
# What the items of each stage are called: calendars count events (exporters.archive.counts).
_ITEMS = {"contacts": ("contact", "contacts"), "calendars": ("event", "events"), "notes": ("note", "notes")}
_STATE_WORDS = {
    "queued": "Waiting to start",
    "running": "Running",
    "retrying": "Waiting to retry",
    "delivered": "Delivered",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
# Who or what asked for the run (`ExportRun.trigger`), in words.
_TRIGGER_WORDS = {
    "manual": "You pressed “Export now”",
    "schedule": "Your schedule",
    "cli": "Command line (an operator)",
    "cli-local": "Command line, kept here and sent nowhere (an operator)",
    "api": "The API (a token of yours)",
    "upgrade": "Before a Lifeboat upgrade",
    "support": "Support",
}


@dataclass(frozen=True)
class RunView:
    """One run as the page and its JSON show it."""

    id: str
    state: str
    state_label: str
    active: bool
    stage: str | None
    stage_label: str
    items_done: int | None
    items_total: int | None
    progress: int
    label: str  # the sentence the live region reads: "Calendars: 120 of 500 events (45%)"
    attempt: int
    max_attempts: int
    next_attempt_at: str | None
    next_attempt: str  # in the user's zone
    error: str | None
    trigger: str
    trigger_label: str
    created_at: str | None
    created: str
    finished: str
    seconds: float | None  # from request to finish; None while active
    kept_here: bool  # finished with the archive on Lifeboat's disk alone (`_delivery_facts`)
    partly_delivered: bool  # failed, but some destination has its copy (`_delivery_facts`)
    badge: str  # the badge's style: the state, or "partly" (amber) and "deleted" (grey) beside those words
    archive_deleted_at: str | None  # ISO: when its archive was deleted here (`_deleted_archives`); None if kept
    archive_deleted: str  # the same in the user's zone; "" while the archive is kept

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def detail(self) -> str:
        """What `label` says beyond the state badge beside it; "" when it would only repeat it ("Failed Failed.").

        Why not `label` itself: the dashboard's live region reads `label` alone, so
        it must name the state; the run page shows it after a badge that already does.
        """
        deleted = f"Its archive was deleted here on {self.archive_deleted}." if self.archive_deleted else ""
        if self.partly_delivered:
            partly = "Some of your destinations have this archive; the deliveries below say which did not, and why."
            return f"{partly} {deleted}".strip()
        if self.state in ("queued", "failed", "cancelled"):
            return deleted
        if self.state == "delivered" and self.kept_here and deleted:
            return f"The archive was kept here only, and was deleted on {self.archive_deleted}."
        if self.state == "delivered" and self.kept_here:
            return "The archive is kept here only. Add a destination to have a copy elsewhere."
        if self.state == "delivered" and deleted:
            return f"Delivered to your destinations; the copy kept here was deleted on {self.archive_deleted}."
        if self.state == "delivered":
            return "The archive is ready."
        return self.label


def _delivery_facts(session: Session, runs: Iterable[ExportRun]) -> tuple[set[str], set[str]]:
    """(the delivered runs that delivered nowhere, the failed runs that delivered somewhere) of `runs`, in one query.

    Why the first: "Delivered" beside a run that delivered nowhere read as if a
    copy were somewhere else, and a copy somewhere else is the point of Lifeboat.
    Why the second: one broken destination fails a run while the others got
    their copy (`jobs.execute._deliver` tries every one). "Failed" alone read
    as if no copy had been made anywhere (user trial).
    """
    runs = list(runs)
    finished = [run.id for run in runs if run.state == "delivered"]
    failed = [run.id for run in runs if run.state == "failed"]
    # Asked even for none: a page's statements stay the same however many runs it shows.
    rows = session.execute(
        select(DeliveryAttempt.run_id, DeliveryAttempt.outcome).where(DeliveryAttempt.run_id.in_(finished + failed))
    ).all()
    tried = {run_id for run_id, _ in rows}
    somewhere = {run_id for run_id, outcome in rows if outcome == "delivered"}
    return set(finished) - tried, set(failed) & somewhere


def _deleted_archives(session: Session, runs: Iterable[ExportRun]) -> dict[str, dt.datetime]:
    """When the archives of `runs` that were deleted here were deleted, by run id, in one query.

    Why: after its only archive was deleted, a run read "Kept here — the archive is kept here
    only" beside "Archive: None", and the overview "Last export: Kept here" (user trial).
    """
    by_archive = {run.archive_id: run.id for run in runs if run.archive_id is not None}
    rows = session.execute(
        select(Archive.id, Archive.deleted_at).where(Archive.id.in_(list(by_archive)), Archive.deleted_at.is_not(None))
    ).all()
    return {by_archive[archive_id]: deleted_at for archive_id, deleted_at in rows if deleted_at is not None}


def run_views(
    session: Session, runs: Sequence[ExportRun], timezone: str | None, *, now: dt.datetime | None = None
) -> list[RunView]:
    """Describe `runs`, times in `timezone`: the one way every page (the user's and support's) words a run.

    Why the pages call this rather than `run_view`: a delivered run reads "Kept
    here" when it delivered nowhere, and a failed one "Partly delivered" when
    some destination got its copy (`_delivery_facts`); a page that made its
    views without asking (support's, found by a user trial) said "Delivered".
    """
    kept, partly = _delivery_facts(session, runs)
    deleted = _deleted_archives(session, runs)
    return [
        run_view(
            run, timezone, now=now, kept_here=run.id in kept, partly=run.id in partly, deleted_at=deleted.get(run.id)
        )
        for run in runs
    ]


def run_view(
    run: ExportRun,
    timezone: str | None,
    *,
    now: dt.datetime | None = None,
    kept_here: bool = False,
    partly: bool = False,
    deleted_at: dt.datetime | None = None,
) -> RunView:
    """Describe `run`, times in `timezone`; `kept_here`: it delivered nowhere; `partly`: it failed after
    delivering to some destination; `deleted_at`: when its archive was deleted here (see `run_views`)."""
    kept_here = kept_here and run.state == "delivered"
    partly = partly and run.state == "failed"
    deleted_words = local_time(deleted_at, timezone) if deleted_at is not None else ""
    name, done, total = split_stage(run.stage)
    active = run.state in ACTIVE
    progress = max(0, min(100, int(run.progress or 0)))
    stage_label = _stage_label(name, done, total)
    next_attempt = ""
    if run.state == "retrying":
        next_attempt = local_time(run.not_before, timezone)
        label = (
            f"Attempt {run.attempt} of {run.max_attempts} did not finish. "
            f"Next attempt {_when(run.not_before, timezone, now)}."
        )
    elif run.state == "queued":
        label = "Waiting to start."
    elif run.state == "running":
        label = f"{stage_label} ({progress}%)" if stage_label else f"Running ({progress}%)"
    elif kept_here and deleted_at is not None:
        label = f"Done; the archive was deleted on {deleted_words}."
    elif kept_here:
        # No advice here: the label knows only the run, and "Add a destination" was untrue beside an
        # email address waiting for its owner (user trial); the run page says which were skipped.
        label = "Done: the archive is kept here only."
    elif run.state == "delivered":
        label = "Done: the archive is ready."
    elif run.state == "cancelled":
        label = "Cancelled."
    elif partly:
        label = PARTLY_DELIVERED_LABEL
    else:
        label = "Failed."
    return RunView(
        id=run.id,
        state=run.state,
        state_label=state_label(run.state, kept_here=kept_here, partly=partly, deleted=deleted_at is not None),
        active=active,
        stage=name,
        stage_label=stage_label,
        items_done=done,
        items_total=total,
        progress=100 if run.state == "delivered" else progress,
        label=label,
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        next_attempt_at=iso(run.not_before) if run.state == "retrying" else None,
        next_attempt=next_attempt,
        error=run.error,
        trigger=run.trigger,
        trigger_label=_TRIGGER_WORDS.get(run.trigger, run.trigger.capitalize()),
        created_at=iso(run.created_at),
        created=local_time(run.created_at, timezone),
        finished=local_time(run.finished_at, timezone),
        seconds=_elapsed(run.created_at, run.finished_at),
        kept_here=kept_here,
        partly_delivered=partly,
        badge=badge_class(run.state, kept_here=kept_here, partly=partly, deleted=deleted_at is not None),
        archive_deleted_at=iso(deleted_at) if deleted_at is not None else None,
        archive_deleted=deleted_words,
    )


KEPT_HERE = "Kept here"  # a delivered run's label when it delivered nowhere (`_delivery_facts`)
ARCHIVE_DELETED = "Archive deleted"  # ... and its archive was deleted here since (`_deleted_archives`)
PARTLY_DELIVERED = "Partly delivered"  # a failed run's label when some destination got its copy
PARTLY_DELIVERED_LABEL = "Failed: some destinations have the archive, not all."


def state_label(state: str, *, kept_here: bool, partly: bool = False, deleted: bool = False) -> str:
    """A run's state as its badge says it: "Kept here" for a delivered run that delivered nowhere
    ("Archive deleted" once its archive was deleted), "Partly delivered" for a failed one that delivered somewhere."""
    if kept_here and state == "delivered":
        return ARCHIVE_DELETED if deleted else KEPT_HERE
    return PARTLY_DELIVERED if partly and state == "failed" else state_words(state)


def badge_class(state: str, *, kept_here: bool, partly: bool = False, deleted: bool = False) -> str:
    """The badge's style: "partly" (amber, static/style.css) for a partly delivered run, not failed's red;
    "deleted" (grey) for a run whose only copy was deleted; otherwise the state."""
    if partly and state == "failed":
        return "partly"
    if kept_here and deleted and state == "delivered":
        return "deleted"
    return state


def state_words(state: str) -> str:
    """`Waiting to retry` for "retrying": a run's state as the pages show it."""
    return _STATE_WORDS.get(state, state.capitalize())


def stage_words(name: str) -> str:
    """`Checking the archive` for "verified": a stage's name as the pages show it."""
    return _STAGE_WORDS.get(name, name.replace("_", " ").capitalize())


def _elapsed(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _stage_label(name: str | None, done: int | None, total: int | None) -> str:
    if not name:
        return ""
    words = stage_words(name)
    if done is None or total is None or name not in _ITEMS:
        return words
    one, many = _ITEMS[name]
    return f"{words}: {done:,} of {total:,} {one if total == 1 else many}"


def _when(at: dt.datetime | None, timezone: str | None, now: dt.datetime | None) -> str:
    """`at 14:10 CET (in 4 minutes)`: the clock time, and how long that is from now."""
    if at is None:
        return "soon"
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    minutes = max(0, round((at - now).total_seconds() / 60))
    wait = "in under a minute" if minutes < 1 else f"in {minutes} minute{'s' if minutes != 1 else ''}"
    return f"at {local_time(at, timezone, with_date=(at - now) > dt.timedelta(hours=12))} ({wait})"


@dataclass(frozen=True)
class LastExport:
    """The dashboard's "Last export" line: the newest finished run, or a newer archive made outside any run."""

    state: str
    state_label: str
    at: str | None  # ISO, for <time datetime>
    when: str  # in the user's zone
    error: str | None
    run_id: str | None  # None for an archive written outside a run
    badge: str = ""  # the badge's style (`badge_class`); "" reads as the state
    deleted_at: str | None = None  # ISO: when the run's archive was deleted here
    deleted: str = ""  # that, in words: "Deleted on 7 Dec 2026, 18:00 CET; Lifeboat keeps no copy of it."
    resend: str = ""  # a later re-send by support of an older archive, in words; it is not an export
    resend_run_id: str | None = None


def last_export(
    runs: Sequence[ExportRun], newest: Archive | None, timezone: str | None, views: Sequence[RunView] = ()
) -> LastExport | None:
    """What the "Last export" line says, from the rows that decide it: finished runs and archives.

    Why both: an archive can exist without a run (`lifeboat export` at a
    terminal, without --deliver), and a dashboard that reads
    "None yet" above a list of archives makes a user doubt their backups.
    Whichever finished last wins. `views` (`run_views` of `runs`) say whether
    it was kept here only, partly delivered, or its archive deleted since.
    """
    finished = [r for r in runs if r.state not in ACTIVE]
    # A re-send (support's, of an archive made earlier) exports nothing: "Last export: Delivered" at its
    # time read as a fresh backup when it was an old archive sent again (user trial). Said beside it.
    run = next((r for r in finished if r.resend_to is None), None)
    resent = next((r for r in finished if r.resend_to is not None), None)
    ended = (run.finished_at or run.created_at) if run is not None else None
    resend = _resend_words(resent, timezone) if resent is not None and (ended is None or _ended(resent) > ended) else ""
    resend_run_id = resent.id if resend and resent is not None else None
    if newest is not None and (ended is None or newest.created_at > ended):
        return LastExport(
            state="delivered",
            state_label="Archive ready",
            at=iso(newest.created_at),
            when=local_time(newest.created_at, timezone),
            error=None,
            run_id=None,
            resend=resend,
            resend_run_id=resend_run_id,
        )
    if run is None or ended is None:
        return None
    view = next((v for v in views if v.id == run.id), None) or run_view(run, timezone)
    deleted = ""
    if view.archive_deleted and view.kept_here:
        deleted = f"Deleted on {view.archive_deleted}; Lifeboat keeps no copy of it."
    elif view.archive_deleted:
        deleted = f"Archive deleted here on {view.archive_deleted}; destinations that got it keep their copy."
    return LastExport(
        state=run.state,
        state_label=view.state_label,
        at=iso(ended),
        when=local_time(ended, timezone),
        error=run.error,
        run_id=run.id,
        badge=view.badge,
        deleted_at=view.archive_deleted_at,
        deleted=deleted,
        resend=resend,
        resend_run_id=resend_run_id,
    )


def _ended(run: ExportRun) -> dt.datetime:
    return run.finished_at or run.created_at


def _resend_words(run: ExportRun, timezone: str | None) -> str:
    """`Support re-sent the archive of 8 Dec 2026, 00:46 CET to your email on …: delivered.`"""
    to = "your email address" if run.resend_to == "email" else "your destinations"
    made = f" of {local_time(run.archive.created_at, timezone)}" if run.archive is not None else ""
    outcome = _STATE_WORDS.get(run.state, run.state).lower()
    return f"Support re-sent the archive{made} to {to} on {local_time(_ended(run), timezone)}: {outcome}."
