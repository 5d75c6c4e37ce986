"""What an export run looks like to its user: the stage in words, items done of total, the next attempt.

Why on the server: the dashboard renders this on first load and its script
polls the same words as JSON (`runs.run_status`), so a page that was left and
reopened shows exactly what the script would have shown, and the script only
copies text. The stage column carries items done of total when the exporter
knows them (`jobs.export.split_stage`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from jobs.export import split_stage
from store import ExportRun
from web.formatting import iso, local_time

ACTIVE = ("queued", "running", "retrying")
_STAGE_WORDS = {
    "starting": "Starting",
    "contacts": "Contacts",
    "calendars": "Calendars",
    "notes": "Notes",
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
    created_at: str | None
    created: str
    finished: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def run_view(run: ExportRun, timezone: str | None, *, now: dt.datetime | None = None) -> RunView:
    """Describe `run` for its owner, times in `timezone`."""
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
    elif run.state == "delivered":
        label = "Done: the archive is ready."
    else:
        label = "Failed."
    return RunView(
        id=run.id,
        state=run.state,
        state_label=_STATE_WORDS.get(run.state, run.state.capitalize()),
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
        created_at=iso(run.created_at),
        created=local_time(run.created_at, timezone),
        finished=local_time(run.finished_at, timezone),
    )


def _stage_label(name: str | None, done: int | None, total: int | None) -> str:
    if not name:
        return ""
    words = _STAGE_WORDS.get(name, name.replace("_", " ").capitalize())
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
