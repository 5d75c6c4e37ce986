"""Export now, and watch a run: the form the dashboard posts and the JSON its script polls."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

import jobs
from jobs import run_lifecycle
from store import ExportRun, User, get_db, get_session
from store.base import utcnow
from web.run_view import run_views
from web.signup import is_confirmed

bp = Blueprint("runs", __name__)


class ExportNowForm(FlaskForm):
    """No fields: the form exists for its CSRF token."""


@bp.route("/export", methods=["POST"])
@login_required
def export_now() -> Response:
    if not ExportNowForm().validate_on_submit():
        abort(400, "The form expired, so no export was started. Reload the page and press “Export now” again.")
    if not is_confirmed(current_user.get_id()):
        flash("Confirm your email address first: follow the link we sent you, or ask for a new one.", "error")
        return redirect(url_for("dashboard.index"))
    with get_db().session(write=True) as session:
        run, created = run_lifecycle.request_run(session, int(current_user.get_id()), "manual", now=utcnow())
    if created:
        jobs.kick()
        flash("Export started. This page shows its progress.", "info")
    else:
        flash("An export is already in progress; it is shown below.", "info")
    return redirect(url_for("dashboard.index", _anchor=f"run-{run.id}"))


@bp.route("/runs/<run_id>.json")
@login_required
def run_status(run_id: str) -> Response:
    run = get_session().get(ExportRun, run_id)
    if run is None or str(run.user_id) != current_user.get_id():
        abort(404)
    user = get_session().get(User, run.user_id)
    [view] = run_views(get_session(), [run], user.timezone if user is not None else None)
    return jsonify(
        **view.as_json(),
        archive_id=run.archive_id,
        history=[{"at": e.at.isoformat(), "level": e.level, "message": e.message} for e in run.history],
    )
