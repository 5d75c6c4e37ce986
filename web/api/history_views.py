"""API: what support did on your account (the same rows as the "Support actions" section of /history).

Why views apart from the actions: support's every look at the account's status
is recorded, about two per action; the list carries what support did (paged,
with the reason) and `views` says how often they looked and when last.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from jobs.audit_search import support_action_count, support_actions, support_views
from store import get_session
from web.api.blueprint import bp, user_id


class AccountSupportActionSchema(Schema):
    at = fields.DateTime(required=True)
    action = fields.String(required=True, metadata={"example": "archive.resend"})
    what = fields.String(required=True, metadata={"description": "The action in words."})
    reason = fields.String(required=True, metadata={"description": "Why support acted, as they wrote it."})
    outcome = fields.String(required=True, metadata={"enum": ["ok", "refused", "failed"]})
    outcome_label = fields.String(required=True)


class SupportViewsSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "How often support looked at your export status."})
    last_at = fields.DateTime(required=True, allow_none=True, metadata={"description": "When last (null: never)."})


class AccountSupportActionListSchema(Schema):
    items = fields.List(fields.Nested(AccountSupportActionSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "Actions in all pages (views not counted)."})
    next_cursor = fields.String(allow_none=True, required=True)
    views = fields.Nested(SupportViewsSchema, required=True)


class SupportActionArgsSchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(
        validate=validate.Regexp(r"^[0-9]{1,9}$", error="Not a cursor."),
        metadata={"description": "`next_cursor` of the previous page."},
    )


@bp.route("/history/support")
@bp.arguments(SupportActionArgsSchema, location="query", unknown=RAISE)
@bp.response(200, AccountSupportActionListSchema)
def support_actions_on_my_account(args: dict[str, Any]) -> dict[str, Any]:
    """Each time support acted on your account (when, what, why, how it ended), newest first, paged; and how
    often support looked at your export status (`views`: a count and the last time, not one item per look)."""
    session, owner = get_session(), user_id()
    offset, limit = int(args.get("cursor") or 0), args["limit"]
    total = support_action_count(session, owner)
    return {
        "items": [asdict(a) for a in support_actions(session, owner, limit=limit, offset=offset)],
        "total": total,
        "next_cursor": str(offset + limit) if offset + limit < total else None,
        "views": asdict(support_views(session, owner)),
    }
