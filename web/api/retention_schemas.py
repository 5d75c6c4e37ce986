"""The API's shapes for retention: the policy in, and a dry run's decisions out.

Why their own module: `web.api.schemas` holds the shapes of every other
resource; these five counts and a plan are one subject, documented together.
The counts are the destination's settings names, so `GET /destinations` shows
the stored policy under the same names that `PUT …/retention` takes.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from delivery.retention_policy import MAX_COUNT
from web.api.schemas import JsonInteger


def _count(what: str) -> JsonInteger:
    return JsonInteger(
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_COUNT),
        metadata={"description": f"{what}; 0, null or left out: this rule is off."},
    )


class RetentionInSchema(Schema):
    """A whole policy: a rule left out is off. Every rule off keeps every archive (the default)."""

    retention_keep = _count("Keep the last N archives")
    retention_daily = _count("Keep the newest archive of each of the last N days that have one")
    retention_weekly = _count("Keep the newest archive of each of the last N ISO weeks that have one")
    retention_monthly = _count("Keep the newest archive of each of the last N months that have one")
    retention_yearly = _count("Keep the newest archive of each of the last N years that have one")


class RetentionPolicySchema(Schema):
    retention_keep = fields.Integer(required=True)
    retention_daily = fields.Integer(required=True)
    retention_weekly = fields.Integer(required=True)
    retention_monthly = fields.Integer(required=True)
    retention_yearly = fields.Integer(required=True)
    summary = fields.String(required=True, metadata={"description": "The policy in plain words."})


class ArchiveDecisionSchema(Schema):
    key = fields.String(required=True, metadata={"description": "The object key in the bucket."})
    created_at = fields.DateTime(required=True, metadata={"description": "When the archive was made (its name)."})
    verified = fields.Boolean(
        required=True, metadata={"description": "Lifeboat checked this object's size and SHA-256 when delivering it."}
    )
    reasons = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": 'Why it is kept, e.g. "daily 2026-12-05", "last 3", "newest verified"; empty: deleted.'
        },
    )


class RetentionRunSchema(Schema):
    destination_id = fields.Integer(required=True)
    dry_run = fields.Boolean(required=True)
    policy = fields.Nested(RetentionPolicySchema, required=True)
    summary = fields.String(required=True, metadata={"description": "What was found (and done), in one line."})
    note = fields.String(
        allow_none=True, required=True, metadata={"description": "Why nothing is deleted at all, if so."}
    )
    delete = fields.List(fields.Nested(ArchiveDecisionSchema), required=True, metadata={"description": "Newest first."})
    keep = fields.List(fields.Nested(ArchiveDecisionSchema), required=True, metadata={"description": "Newest first."})
    deleted = fields.List(
        fields.String(), required=True, metadata={"description": "Keys deleted (empty in a dry run)."}
    )
    skipped = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Archives that stayed although the policy would delete them, with why."},
    )
