"""Run history and one run in detail: what happened to my backups, and cancelling one still under way.

Why its own pages rather than more of the dashboard: the dashboard shows the
last few runs; answering "did last Tuesday's backup reach my bucket, and
which version is it?" needs every run, each stage's timing and each
delivery's receipt (S3 key, version id, ETag; email Message-ID).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from jobs import run_lifecycle
from jobs.audit_search import support_action_count, support_actions, support_views
from store import Archive, ExportRun, RunState, User, get_db, get_session
from store.base import utcnow
from web.redirects import safe_next
from web.run_detail import (
    attempt_views,
    fidelity_view,
    kept_here_words,
    owner_events,
    skipped_destinations,
    stage_timings,
)
from web.run_view import ACTIVE, RunView, run_views, state_words

bp = Blueprint("history", __name__)
PER_PAGE = 25
ACTIONS_PER_PAGE = 25  # support actions, paged apart from the runs (`?actions=N`)
NO_SUCH_RUN = "You have no export with this id. It may belong to another account, or the link is incomplete."


class CancelForm(FlaskForm):
    """No fields: the form exists for its CSRF token (where to go back to is a plain `next`)."""


@dataclass(frozen=True)
class HistoryRow:
    run: RunView
    archive: Archive | None  # None when the run wrote none, or it has expired


@bp.route("/history")
@login_required
def index() -> str:
    """Every run of the user, newest first, PER_PAGE to a page."""
    session = get_session()
    user = _user()
    total = session.scalar(select(func.count()).select_from(ExportRun).where(ExportRun.user_id == user.id)) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = _page_arg("page", pages)
    action_total = support_action_count(session, user.id)
    action_pages = max(1, math.ceil(action_total / ACTIONS_PER_PAGE))
    action_page = _page_arg("actions", action_pages)
    runs = session.scalars(
        select(ExportRun)
        .where(ExportRun.user_id == user.id)
        .options(selectinload(ExportRun.archive))
        .order_by(ExportRun.created_at.desc(), ExportRun.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    ).all()
    views = run_views(session, runs, user.timezone)
    rows = [HistoryRow(view, _kept(run.archive)) for view, run in zip(views, runs, strict=True)]
    has_archives = session.scalar(select(Archive.id).where(Archive.user_id == user.id).limit(1)) is not None
    return render_template(
        "history.html",
        rows=rows,
        page=page,
        pages=pages,
        total=total,
        has_archives=has_archives,
        user=user,
        support_actions=support_actions(
            session, user.id, limit=ACTIONS_PER_PAGE, offset=(action_page - 1) * ACTIONS_PER_PAGE
        ),
        action_total=action_total,
        action_page=action_page,
        action_pages=action_pages,
        support_views=support_views(session, user.id),
    )


def _page_arg(name: str, pages: int) -> int:
    """The page number in `?name=`, kept within 1..pages (a stale link past the end shows the last page)."""
    return min(max(request.args.get(name, 1, type=int) or 1, 1), pages)


@bp.route("/runs/<run_id>")
@login_required
def run_detail(run_id: str) -> str:
    """One run: trigger, state, stage timings, each delivery and its receipt, what went wrong and what to do."""
    session = get_session()
    user = _user()
    run = session.get(ExportRun, run_id)
    if run is None or run.user_id != user.id:
        abort(404, NO_SUCH_RUN)
    view = run_views(session, [run], user.timezone, now=utcnow())[0]
    skipped = skipped_destinations(session, run, user)
    outcome, deliveries = kept_here_words(view, skipped) if view.kept_here else (view.detail, "")
    return render_template(
        "run.html",
        user=user,
        run=view,
        skipped=skipped,
        outcome=outcome,
        deliveries=deliveries,
        archive=_kept(run.archive),
        stages=stage_timings(run.history),
        attempts=attempt_views(session, run.id),
        history=owner_events(run),
        fidelity=fidelity_view(session, run.id),
    )


@bp.route("/runs/<run_id>/cancel", methods=["POST"])
@login_required
def cancel(run_id: str) -> Response:
    """Cancel the user's run while it is active; say what happened either way."""
    if not CancelForm().validate_on_submit():
        abort(400, "The form expired, so nothing was cancelled. Reload the page and press “Cancel” again.")
    user_id = int(current_user.get_id())
    run = get_session().get(ExportRun, run_id)
    if run is None or run.user_id != user_id:
        abort(404, NO_SUCH_RUN)
    # Read first: `cancel` answers "cancelled" for a run cancelled earlier too, and the user should hear which.
    state = run_lifecycle.cancel(get_db(), run_id, user_id, now=utcnow()) if run.state in ACTIVE else run.state
    if state is None:
        abort(404, NO_SUCH_RUN)
    if state == RunState.CANCELLED and run.state in ACTIVE:
        flash(
            "Export cancelled. If it was already running, it stops at its next step; "
            "a delivery already under way still completes and is listed below.",
            "info",
        )
    else:
        flash(f"This export had already ended ({state_words(state).lower()}), so there was nothing to cancel.", "info")
    back = safe_next(request.form.get("next")) or url_for("history.run_detail", run_id=run_id)
    return redirect(back)


def _user() -> User:
    user = get_session().get(User, int(current_user.get_id()))
    assert user is not None  # login_required loaded this very user
    return user


def _kept(archive: Archive | None) -> Archive | None:
    """The run's archive while it can still be downloaded."""
    return archive if archive is not None and archive.deleted_at is None else None
