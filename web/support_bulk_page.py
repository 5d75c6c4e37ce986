"""/support/bulk-resend: after an outage, re-send to everyone whose delivery failed (dry run, confirm, watch).

For support and admin alike: it is the console's per-user "Re-send" done for
many users at once, with the same service, checks and audit rows
(`jobs.bulk_resend` over `jobs.support_actions.resend_archive`).

The steps: the form (window, kind, host, reason) → a dry run that shows the
count and a sample and sends nothing → "Start" (its request key makes a
second press find the same job) → the job's page, whose progress comes from
the audit log (`status.json` for the small script that polls it), with Pause
and Resume/Continue. The job runs in a thread of the web process; if that
process ends, the next dispatch tick of any process continues it once its
runner's lease (RUN_LEASE_SECONDS) has expired, and "Continue" does so at once;
nobody is sent to twice.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import (
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from errors import InvalidInput
from jobs import bulk_resend
from jobs.bulk_resend import JobStatus, UnknownJob
from jobs.support_actions import MAX_REASON, check_reason
from store import AuditEvent, get_db, get_session
from store.base import utcnow
from web.staff_access import staff_required
from web.support_actions_page import acting_staff, fresh_request_key

bp = Blueprint("support_bulk", __name__, url_prefix="/support/bulk-resend")
RECENT = 10
TIME_FORMAT = "%Y-%m-%dT%H:%M"
KIND_CHOICES = [SelectChoice("", "Any"), SelectChoice("s3", "S3 buckets"), SelectChoice("email", "Email")]


class BulkResendForm(FlaskForm):
    since = DateTimeLocalField(
        "Failed from (UTC)", format=TIME_FORMAT, validators=[InputRequired("Give a start time.")]
    )
    until = DateTimeLocalField(
        "Failed until (UTC)", format=TIME_FORMAT, validators=[InputRequired("Give an end time.")]
    )
    kind = SelectField(
        "Destination kind",
        choices=KIND_CHOICES,
        default="",
        validate_choice=True,
    )
    host = StringField("S3 endpoint host (optional)", validators=[Optional(), Length(max=253)])
    reason = StringField(
        "Reason", validators=[DataRequired("Give a reason: it is kept in the audit log."), Length(max=MAX_REASON)]
    )
    per_minute = IntegerField(
        "At most this many users a minute",
        default=120,
        validators=[InputRequired("Give a rate."), NumberRange(1, 6000, "Between 1 and 6000 users a minute.")],
    )
    request_key = HiddenField()

    def bulk_filter(self) -> bulk_resend.BulkFilter:
        return bulk_resend.parse_filter(self.since.data, self.until.data, self.kind.data, self.host.data)


def _recent_jobs() -> list[JobStatus]:
    rows = get_session().scalars(
        select(AuditEvent.request_key)
        .where(AuditEvent.action == bulk_resend.STARTED)
        .order_by(AuditEvent.id.desc())
        .limit(RECENT)
    )
    return [bulk_resend.status(get_session(), key.split(":", 1)[1]) for key in rows if key]


def _form_page(form: BulkResendForm, *, preview: bulk_resend.DryRun | None = None, error: str = "") -> tuple[str, int]:
    return (
        render_template(
            "support/bulk_resend.html", form=form, preview=preview, error=error, jobs=_recent_jobs(), job=None
        ),
        400 if error or form.errors else 200,
    )


@bp.route("", methods=["GET"])
@staff_required()
def form_page() -> tuple[str, int]:
    return _form_page(BulkResendForm())


@bp.route("", methods=["POST"])
@staff_required()
def dry_run() -> tuple[str, int]:
    """Validate and count: nothing is sent, one `bulk_resend_dry_run` audit row is written."""
    form = BulkResendForm()
    if not form.validate_on_submit():
        return _form_page(form, error="Nothing was counted: fix the fields marked below.")
    try:
        preview = bulk_resend.dry_run(
            get_db(), acting_staff(), form.bulk_filter(), reason=form.reason.data or "", now=utcnow()
        )
    except InvalidInput as exc:
        return _form_page(form, error=str(exc).splitlines()[0])
    form.request_key.data = fresh_request_key()
    return _form_page(form, preview=preview)


@bp.route("/start", methods=["POST"])
@staff_required()
def start() -> Response | tuple[str, int]:
    """Start the job the dry run showed (the same filter, re-selected now) and go to its progress page."""
    form = BulkResendForm()
    if not form.validate_on_submit():
        return _form_page(form, error="Nothing was started: fix the fields marked below.")
    try:
        job_id = bulk_resend.start(
            get_db(),
            acting_staff(),
            form.bulk_filter(),
            reason=form.reason.data or "",
            per_minute=form.per_minute.data,
            now=utcnow(),
            request_key=form.request_key.data or None,
        )
    except InvalidInput as exc:
        return _form_page(form, error=str(exc).splitlines()[0])
    bulk_resend.run_in_background(current_app._get_current_object(), job_id)  # type: ignore[attr-defined]
    return redirect(url_for("support_bulk.job_page", job_id=job_id))


def _job(job_id: str) -> JobStatus:
    try:
        return bulk_resend.current_status(get_db(), job_id)
    except UnknownJob as exc:
        abort(404, str(exc).splitlines()[0])


@bp.route("/<job_id>", methods=["GET"])
@staff_required()
def job_page(job_id: str) -> str:
    return render_template("support/bulk_resend.html", job=_job(job_id), form=None, preview=None, error="", jobs=[])


@bp.route("/<job_id>/status.json", methods=["GET"])
@staff_required()
def job_status(job_id: str) -> Response:
    """The figures the progress script shows (the same as the staff API's)."""
    return jsonify(status_json(_job(job_id)))


def status_json(job: JobStatus) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "state": job.state,
        "count": job.count,
        "done": job.done,
        "sent": job.sent,
        "skipped": job.skipped,
        "label": job.describe(),
    }


def _control_reason() -> str:
    """The reason typed beside Pause or Resume, as the audit log keeps it; without one, a 400 page says so.

    Why asked: pausing or taking over a job that re-sends to hundreds of users
    is a staff action like any other, and the job's own reason (why it was
    started) does not say why it was stopped.
    """
    try:
        return check_reason(request.form.get("reason"))
    except InvalidInput as exc:
        abort(400, str(exc).splitlines()[0] + " Go back, fix it and press the button again; nothing was done.")


@bp.route("/<job_id>/pause", methods=["POST"])
@staff_required()
def pause(job_id: str) -> Response:
    job = _job(job_id)
    bulk_resend.pause(get_db(), acting_staff(), job.job_id, reason=_control_reason(), now=utcnow())
    flash("Paused: no further user is queued. Re-sends already queued still go out.", "info")
    return redirect(url_for("support_bulk.job_page", job_id=job_id))


@bp.route("/<job_id>/resume", methods=["POST"])
@staff_required()
def resume(job_id: str) -> Response:
    """Resume a paused job, or continue one whose runner stopped (a restart): each user is still sent to once."""
    found = _job(job_id)
    job = bulk_resend.resume(get_db(), acting_staff(), found.job_id, reason=_control_reason(), now=utcnow())
    if not job.finished:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        bulk_resend.run_in_background(app, job_id, take_over=True)  # a person asked: continue now
        flash("Continuing where the job stopped; nobody is sent to twice.", "info")
    return redirect(url_for("support_bulk.job_page", job_id=job_id))
