"""API: what support did on your account (the same rows as the "Support actions" section of /history)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from marshmallow import Schema, fields

from jobs.audit_search import support_actions
from store import get_session
from web.api.blueprint import bp, user_id


class AccountSupportActionSchema(Schema):
    at = fields.DateTime(required=True)
    action = fields.String(required=True, metadata={"example": "resend_archive"})
    what = fields.String(required=True, metadata={"description": "The action in words."})
    reason = fields.String(required=True, metadata={"description": "Why support acted, as they wrote it."})
    outcome = fields.String(required=True, metadata={"enum": ["ok", "refused", "failed"]})
    outcome_label = fields.String(required=True)


class AccountSupportActionListSchema(Schema):
    items = fields.List(fields.Nested(AccountSupportActionSchema), required=True)


@bp.route("/history/support")
@bp.response(200, AccountSupportActionListSchema)
def support_actions_on_my_account() -> dict[str, Any]:
    """Each time support acted on your account: when, what, why and how it ended (newest first, the last 50)."""
    return {"items": [asdict(a) for a in support_actions(get_session(), user_id())]}
