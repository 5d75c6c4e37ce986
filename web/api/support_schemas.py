"""Shapes of the staff read API (/api/v1/support): the queue, users found, one user's summary, the audit log.

Why a module apart from `web.api.schemas`: these describe other users'
accounts for staff, and carry only metadata (states, times, receipts,
checksums, masked credentials); keeping them apart makes it plain that no
user-content schema is reused here.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from jobs.support_queue import KINDS
from web.api.schemas import ArchiveCountsSchema, DeliveryAttemptSchema, RunSchema, StageSchema


def _limit() -> fields.Integer:
    return fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def _cursor() -> fields.String:
    """An opaque position (these lists order by time, not by id): pass back `next_cursor`."""
    return fields.String(
        validate=validate.Regexp(r"^[0-9]{1,9}$", error="Not a cursor."),
        metadata={"description": "`next_cursor` of the previous page."},
    )


class QueueArgsSchema(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={"description": "Only items of this kind."})
    limit = _limit()
    cursor = _cursor()


class QueueItemSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    kind_label = fields.String(required=True)
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    at = fields.DateTime(required=True)
    message = fields.String(required=True)
    run_id = fields.String(allow_none=True, required=True)
    destination_id = fields.Integer(allow_none=True, required=True)


class QueuePageSchema(Schema):
    items = fields.List(fields.Nested(QueueItemSchema), required=True)
    total = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class FindArgsSchema(Schema):
    q = fields.String(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata={"description": "Email prefix (any case), user id, run id, or archive SHA-256 (8+ leading digits)."},
    )


class UserHitSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ["user", "support", "admin"]})
    state = fields.String(required=True, metadata={"enum": ["active", "closed"]})
    confirmed = fields.Boolean(required=True)


class UserHitListSchema(Schema):
    items = fields.List(fields.Nested(UserHitSchema), required=True)


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    confirmed_at = fields.DateTime(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    timezone = fields.String(required=True)


class StaffScheduleSchema(Schema):
    description = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    paused = fields.Boolean(required=True)
    paused_reason = fields.String(allow_none=True, required=True)
    next_run_at = fields.DateTime(allow_none=True, required=True)


class LastAttemptSchema(Schema):
    at = fields.DateTime(required=True)
    outcome = fields.String(required=True)
    message = fields.String(required=True)


class StaffDestinationSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    label = fields.String(required=True)
    where = fields.String(required=True)
    credentials = fields.String(required=True, metadata={"description": "Masked (AKIA…WXYZ); never a secret."})
    status = fields.String(required=True)
    status_message = fields.String(allow_none=True, required=True)
    status_at = fields.DateTime(allow_none=True, required=True)
    last_attempt = fields.Nested(LastAttemptSchema, allow_none=True, required=True)


class StaffArchiveSchema(Schema):
    """An archive's metadata: never its content, never a link to it."""

    id = fields.String(required=True)
    size = fields.Integer(required=True, metadata={"description": "Bytes."})
    sha256 = fields.String(required=True)
    counts = fields.Nested(ArchiveCountsSchema, required=True)
    created_at = fields.DateTime(required=True)
    verified_at = fields.DateTime(allow_none=True, required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    deleted_at = fields.DateTime(allow_none=True, required=True)


class StaffRunSchema(RunSchema):
    stages = fields.List(fields.Nested(StageSchema), required=True)
    attempts = fields.List(fields.Nested(DeliveryAttemptSchema), required=True)
    archive = fields.Nested(StaffArchiveSchema, allow_none=True, required=True)
    readback = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "The archive read back after the export: counts, and the kinds and field names that "
            "differ (never values); null for a run that made no archive.",
            "example": "Read back 1,312 items: 2 differences. Fields: contact emails[0].value.",
        },
    )


class UserSummarySchema(Schema):
    account = fields.Nested(AccountSchema, required=True)
    schedule = fields.Nested(StaffScheduleSchema, allow_none=True, required=True)
    destinations = fields.List(fields.Nested(StaffDestinationSchema), required=True)
    runs = fields.List(fields.Nested(StaffRunSchema), required=True, metadata={"description": "The last 20."})
    run_total = fields.Integer(required=True)
    archives = fields.List(fields.Nested(StaffArchiveSchema), required=True, metadata={"description": "The last 20."})


class AuditArgsSchema(Schema):
    actor = fields.String(metadata={"description": "The staff member: email prefix or user id."})
    target = fields.String(metadata={"description": "The target user: email prefix or user id."})
    action = fields.String()
    since = fields.String(metadata={"description": "First UTC day included, YYYY-MM-DD."})
    until = fields.String(metadata={"description": "Last UTC day included, YYYY-MM-DD."})
    limit = _limit()
    cursor = _cursor()


class AuditEventSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(allow_none=True, required=True)
    actor_email = fields.String(required=True)
    actor_role = fields.String(required=True)
    action = fields.String(required=True)
    target_user_id = fields.Integer(allow_none=True, required=True)
    target_email = fields.String(allow_none=True, required=True)
    reason = fields.String(required=True)
    address = fields.String(allow_none=True, required=True)
    outcome = fields.String(required=True)
    detail = fields.Dict(required=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema), required=True)
    total = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True, required=True)
