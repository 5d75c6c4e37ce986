"""Staff API: bulk re-send after an outage (`jobs.bulk_resend` does the work), for staff tokens only.

POST /bulk-resends with `dry_run: true` answers the count and a sample and
sends nothing; without it, it starts a job (the same request key or
`Idempotency-Key` finds the same job) and answers its status. The job runs in
the server; GET its URL for progress, POST …/pause and …/resume to hold and
continue it (resume also restarts a job whose process ended: nobody is sent
to twice). Errors: `invalid_input` (422), `unknown_job` (404).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from flask import current_app, request
from marshmallow import Schema, fields, validate

from errors import InvalidInput
from jobs import bulk_resend
from jobs.audit import Actor
from jobs.bulk_resend import JobStatus, UnknownJob
from jobs.support_actions import MAX_REASON, MAX_REQUEST_KEY
from store import get_db
from store.base import utcnow
from web.api.blueprint import fail
from web.api.support_blueprint import staff_user, support_bp


class BulkFilterSchema(Schema):
    since = fields.AwareDateTime(
        required=True, default_timezone=dt.UTC, metadata={"description": "Failures from this time (UTC if no zone)…"}
    )
    until = fields.AwareDateTime(
        required=True, default_timezone=dt.UTC, metadata={"description": "…up to this time (exclusive)."}
    )
    kind = fields.String(allow_none=True, validate=validate.OneOf(bulk_resend.KINDS))
    host = fields.String(
        allow_none=True,
        validate=validate.Length(max=253),
        metadata={"description": "Only S3 destinations at this endpoint host; `aws` for AWS itself."},
    )


class BulkResendInSchema(BulkFilterSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))
    dry_run = fields.Boolean(load_default=False, metadata={"description": "Only count and sample; send nothing."})
    per_minute = fields.Integer(
        load_default=120,
        validate=validate.Range(min=1, max=6000),
        metadata={"description": "At most this many users a minute."},
    )
    request_key = fields.String(validate=validate.Length(min=1, max=MAX_REQUEST_KEY))


class BulkControlInSchema(Schema):
    reason = fields.String(validate=validate.Length(max=MAX_REASON), metadata={"description": "For the audit log."})


class CandidateSchema(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    failed_at = fields.DateTime(required=True)
    destination = fields.String(required=True, metadata={"example": "s3 (minio.example)"})
    archive_id = fields.String(required=True)
    archive_at = fields.DateTime(required=True)
    archive_size = fields.Integer(required=True)


class BulkJobSchema(Schema):
    job_id = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "running, paused or finished"})
    count = fields.Integer(required=True, metadata={"description": "Users selected when the job started."})
    done = fields.Integer(required=True, metadata={"description": "Users re-sent to or skipped so far."})
    sent = fields.Integer(required=True)
    skipped = fields.Integer(
        required=True, metadata={"description": "Refused by the account's state (why: in the audit log)."}
    )
    reason = fields.String(required=True)
    started_at = fields.DateTime(required=True)
    started_by = fields.String(required=True)
    per_minute = fields.Integer(allow_none=True, required=True)
    filter = fields.Nested(BulkFilterSchema, required=True)


class BulkResendSchema(Schema):
    dry_run = fields.Boolean(required=True)
    count = fields.Integer(required=True)
    sample = fields.List(
        fields.Nested(CandidateSchema), required=True, metadata={"description": "Dry run: the first 20 users."}
    )
    job = fields.Nested(BulkJobSchema, allow_none=True, required=True, metadata={"description": "The job started."})


def job_json(job: JobStatus) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "state": job.state,
        "count": job.count,
        "done": job.done,
        "sent": job.sent,
        "skipped": job.skipped,
        "reason": job.reason,
        "started_at": job.started_at,
        "started_by": job.started_by,
        "per_minute": job.per_minute,
        "filter": job.filter.as_detail() | {"since": job.filter.since, "until": job.filter.until},
    }


def _actor() -> Actor:
    return Actor.of(staff_user(), request.remote_addr)


def _refused(exc: InvalidInput) -> NoReturn:
    if isinstance(exc, UnknownJob):
        fail(404, "unknown_job", str(exc).splitlines()[0])
    fail(422, "invalid_input", str(exc).splitlines()[0], exc.problems)


@support_bp.route("/bulk-resends", methods=["POST"])
@support_bp.arguments(BulkResendInSchema)
@support_bp.response(200, BulkResendSchema)
def post_bulk_resend(body: dict[str, Any]) -> dict[str, Any]:
    """Re-send the latest verified archive to every user whose delivery failed in a window (dry run first).

    The job queues one "support" run per user (the same bytes, through the
    normal delivery with its retries), each once, at most `per_minute` a minute.
    """
    key = body.get("request_key") or request.headers.get("Idempotency-Key") or None
    try:
        flt = bulk_resend.parse_filter(body["since"], body["until"], body.get("kind"), body.get("host"))
        if body["dry_run"]:
            result = bulk_resend.dry_run(get_db(), _actor(), flt, reason=body["reason"], now=utcnow())
            return {"dry_run": True, "count": result.count, "sample": result.sample, "job": None}
        job_id = bulk_resend.start(
            get_db(), _actor(), flt, reason=body["reason"], per_minute=body["per_minute"], now=utcnow(), request_key=key
        )
    except InvalidInput as exc:
        _refused(exc)
    bulk_resend.run_in_background(current_app._get_current_object(), job_id)  # type: ignore[attr-defined]
    job = bulk_resend.current_status(get_db(), job_id)
    return {"dry_run": False, "count": job.count, "sample": [], "job": job_json(job)}


@support_bp.route("/bulk-resends/<job_id>", methods=["GET"])
@support_bp.response(200, BulkJobSchema)
def get_bulk_resend(job_id: str) -> dict[str, Any]:
    """A bulk re-send's progress (the same figures for every process: they come from the audit log)."""
    try:
        return job_json(bulk_resend.current_status(get_db(), job_id))
    except InvalidInput as exc:
        _refused(exc)


@support_bp.route("/bulk-resends/<job_id>/pause", methods=["POST"])
@support_bp.arguments(BulkControlInSchema)
@support_bp.response(200, BulkJobSchema)
def post_bulk_pause(body: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Stop the job before its next user (re-sends already queued still go out)."""
    try:
        return job_json(bulk_resend.pause(get_db(), _actor(), job_id, reason=body.get("reason", ""), now=utcnow()))
    except InvalidInput as exc:
        _refused(exc)


@support_bp.route("/bulk-resends/<job_id>/resume", methods=["POST"])
@support_bp.arguments(BulkControlInSchema)
@support_bp.response(200, BulkJobSchema)
def post_bulk_resume(body: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Continue a paused job, or restart one whose server process ended; nobody is sent to twice."""
    try:
        job = bulk_resend.resume(get_db(), _actor(), job_id, reason=body.get("reason", ""), now=utcnow())
    except InvalidInput as exc:
        _refused(exc)
    if not job.finished:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        bulk_resend.run_in_background(app, job_id, take_over=True)  # a person asked: continue now
    return job_json(bulk_resend.current_status(get_db(), job_id))
