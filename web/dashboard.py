"""The signed-in user's overview: what Lifeboat holds, the last and next export, and the archives.

Why the schedule and the last finished run are read here: a dashboard that
says "No exports yet … or set a schedule" while archives exist and a schedule
is set makes a user doubt their backups; each line must come from the rows
that decide it.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import Integer, bindparam, select

from exporters.archive.counts import EVENTS_MEANING, contents_line, counts_line
from jobs import get_context
from jobs.copy_checks import copy_checks, current_problems
from jobs.download_links import archive_kinds
from jobs.missed_runs import NOT_REACHING, overdue_user, silence_words
from jobs.schedule import ScheduleSpec
from jobs.user_schedule import delay_words
from store import Archive, Destination, ExportRun, Schedule, get_session
from store.accounts import AccountReader
from store.base import utcnow
from web.auth import signed_in_row
from web.destination_places import places, receiving_states
from web.export_now import ExportNowForm
from web.run_view import ACTIVE, last_export, run_views

bp = Blueprint("dashboard", __name__)
# The figures read the same here as in `export`, `verify`, `restore` and a run's history.
bp.add_app_template_filter(counts_line, "counts_line")


def archive_contents(archive: Archive) -> str:
    """What one archive holds, its left-out kinds named as such (not "0 notes"): for every page listing archives."""
    return contents_line(archive.counts, archive_kinds(get_context().files, archive))


bp.add_app_template_filter(archive_contents, "archive_contents")

# The page's statements, built once and run with {"user_id": ...}. Why: building a select()
# per request (coercing each column and comparison) was about a third of the dashboard's CPU
# (cProfile on the test client); a statement object that is reused also finds its compiled SQL
# in SQLAlchemy's cache without rebuilding anything.
_UID = bindparam("user_id", type_=Integer)
_ARCHIVES = (
    select(Archive)
    .where(Archive.user_id == _UID, Archive.deleted_at.is_(None))
    .order_by(Archive.created_at.desc())
    .limit(20)
)
_RECENT_RUNS = (
    select(ExportRun)
    .where(ExportRun.user_id == _UID)
    # Times are whole seconds (store.base.utcnow): ids, which sort by creation, break ties.
    .order_by(ExportRun.created_at.desc(), ExportRun.id.desc())
    .limit(10)
)
_SCHEDULE = select(Schedule).where(Schedule.user_id == _UID)
_DESTINATIONS = select(Destination).where(Destination.user_id == _UID, Destination.enabled.is_(True))

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@bp.route("/")
@login_required
def index() -> str:
    session = get_session()
    user = signed_in_row()
    counts = AccountReader(session, user).counts()
    uid = {"user_id": user.id}
    archives = session.scalars(_ARCHIVES, uid).all()
    recent = session.scalars(_RECENT_RUNS, uid).all()
    schedule = session.scalars(_SCHEDULE, uid).first()
    where = places(session.scalars(_DESTINATIONS, uid).all(), user)  # a waiting address is not a place yet
    views = run_views(session, recent, user.timezone)
    checks = copy_checks(session, user.id)
    overdue = overdue_user(session, user.id, now=utcnow())  # the missed-run alert's and support queue's rule
    return render_template(
        "dashboard.html",
        user=user,
        counts=counts,
        events_meaning=EVENTS_MEANING,
        archives=archives,
        runs=views,
        active=next((v for v in views if v.state in ACTIVE), None),
        last=last_export(recent, archives[0] if archives else None, user.timezone, views),
        schedule=schedule,
        schedule_words=schedule_words(schedule),
        destinations=receiving_states(where.receiving, checks, user),
        waiting=where.waiting,
        copy_problems=current_problems(session, user.id),
        silence=silence_words(overdue) if overdue is not None else None,
        not_reaching=NOT_REACHING,
        form=ExportNowForm(),
    )


def schedule_words(schedule: Schedule | None) -> str:
    """`Weekly on Monday at 02:00 (Europe/Berlin), starting 1 hour 32 minutes later (this account's fixed delay)`.

    "" when there is no schedule on. The delay is said because the next export's time
    above it is that much later than the chosen time (user trial 9).
    """
    if schedule is None or not schedule.enabled:
        return ""
    when = f"at {schedule.time_of_day} ({schedule.timezone}), {delay_words(ScheduleSpec.from_row(schedule))}"
    if schedule.frequency == "daily":
        return f"Daily {when}"
    if schedule.frequency == "weekly":
        return f"Weekly on {_WEEKDAYS[schedule.weekday % 7]} {when}"
    return f"Monthly on day {schedule.day_of_month} {when}"
