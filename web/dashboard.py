"""The signed-in user's overview: what Lifeboat holds, and their archives."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from exporters.archive.counts import EVENTS_MEANING, counts_line
from store import Archive, ExportRun, User, get_session
from store.accounts import AccountReader
from web.export_now import ExportNowForm

bp = Blueprint("dashboard", __name__)
# The figures read the same here as in `export`, `verify`, `restore` and a run's history.
bp.add_app_template_filter(counts_line, "counts_line")


@bp.route("/")
@login_required
def index() -> str:
    session = get_session()
    user = session.get(User, int(current_user.get_id()))
    assert user is not None
    counts = AccountReader(session, user).counts()
    archives = session.scalars(
        select(Archive)
        .where(Archive.user_id == user.id, Archive.deleted_at.is_(None))
        .order_by(Archive.created_at.desc())
        .limit(20)
    ).all()
    recent = session.scalars(
        select(ExportRun).where(ExportRun.user_id == user.id).order_by(ExportRun.created_at.desc()).limit(10)
    ).all()
    return render_template(
        "dashboard.html",
        user=user,
        counts=counts,
        events_meaning=EVENTS_MEANING,
        archives=archives,
        runs=recent,
        form=ExportNowForm(),
    )
