"""/api/v1/support read routes: the queue, find users, one user's summary, and (admins) the audit log.

The same queries as the console's pages (`jobs.support_queue`,
`jobs.support_lookup`, `jobs.audit_search`), the same metadata only: no
contact, event or note, no download link. Reading a user's summary writes a
`view_user` audit row, as the page does.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from marshmallow import RAISE

from errors import InvalidInput
from jobs.audit_search import audit_count, audit_page, known_actions, parse_filter
from jobs.delivery_places import delivered_places
from jobs.support_lookup import find_users, next_run_at
from jobs.support_queue import KINDS, queue
from store import Archive, get_session
from store.base import utcnow
from web.api import support_schemas as schemas
from web.api.blueprint import fail
from web.api.run_views import run_fields
from web.api.support_blueprint import staff_user, support_bp
from web.support_console import audit_dict, record_view, run_rows, summary_or_404


def _next(offset: int, limit: int, total: int) -> str | None:
    return str(offset + limit) if offset + limit < total else None


@support_bp.route("/queue")
@support_bp.arguments(schemas.QueueArgsSchema, location="query", unknown=RAISE)
@support_bp.response(200, schemas.QueuePageSchema)
def get_queue(args: dict[str, Any]) -> dict[str, Any]:
    """Users needing attention, newest first: failed deliveries, destinations in error, missed/stuck/retrying runs."""
    offset = int(args.get("cursor") or 0)
    kinds = (args["kind"],) if args.get("kind") else KINDS
    page = queue(get_session(), now=utcnow(), kinds=kinds, limit=args["limit"], offset=offset)
    items = [{**asdict(item), "kind_label": item.kind_label} for item in page.items]
    return {"items": items, "total": page.total, "next_cursor": _next(offset, args["limit"], page.total)}


@support_bp.route("/users")
@support_bp.arguments(schemas.FindArgsSchema, location="query", unknown=RAISE)
@support_bp.response(200, schemas.UserHitListSchema)
def find(args: dict[str, Any]) -> dict[str, Any]:
    """Users by email prefix, user id, run id or archive SHA-256 (8+ leading digits)."""
    hits = find_users(get_session(), args["q"])
    return {"items": [{**asdict(hit), "state": hit.state} for hit in hits]}


def _archive(archive: Archive) -> dict[str, Any]:
    return {
        "id": archive.id,
        "size": archive.size,
        "sha256": archive.sha256,
        "counts": archive.counts,
        "created_at": archive.created_at,
        "verified_at": archive.verified_at,
        "expires_at": archive.expires_at,
        "deleted_at": archive.deleted_at,
    }


@support_bp.route("/users/<int:user_id>")
@support_bp.response(200, schemas.UserSummarySchema)
def user_summary(user_id: int) -> dict[str, Any]:
    """One user: account state, schedule, destinations (masked), last runs with timings and receipts, archives."""
    summary = summary_or_404(user_id)
    record_view(staff_user().id, user_id, via="api")
    user, schedule = summary.user, summary.schedule
    runs = []
    places = delivered_places(get_session(), [run.id for run in summary.runs])
    for row, run in zip(run_rows(get_session(), summary.runs), summary.runs, strict=True):
        runs.append(
            {
                **run_fields(run, places.get(run.id, [])),
                "stages": [asdict(s) for s in row.stages],
                "attempts": [asdict(a) for a in row.attempts],
                "archive": _archive(row.archive) if row.archive is not None else None,
                "readback": row.readback.words if row.readback is not None else None,
            }
        )
    return {
        "account": {
            "id": user.id,
            "email": user.email,
            "role": user.role,
            "active": user.is_active,
            "confirmed_at": user.email_confirmed_at,
            "created_at": user.created_at,
            "timezone": user.timezone,
        },
        "schedule": None
        if schedule is None
        else {
            "description": summary.schedule_line,
            "enabled": schedule.enabled,
            "paused": summary.paused,
            "paused_reason": schedule.paused_reason,
            "next_run_at": next_run_at(summary),
        },
        "destinations": [
            {
                **asdict(d),
                "last_attempt": None
                if d.last_attempt is None
                else {"at": d.last_attempt.at, "outcome": d.last_attempt.outcome, "message": d.last_attempt.message},
            }
            for d in summary.destinations
        ],
        "runs": runs,
        "run_total": summary.run_total,
        "archives": [_archive(a) for a in summary.archives],
    }


@support_bp.route("/audit")
@support_bp.arguments(schemas.AuditArgsSchema, location="query", unknown=RAISE)
@support_bp.response(200, schemas.AuditPageSchema)
def audit(args: dict[str, Any]) -> dict[str, Any]:
    """The audit log, newest first (admins only): filter by actor, target user, action and UTC days."""
    if staff_user().role != "admin":
        fail(403, "admin_only", "The audit log is for admins; ask an admin to look it up.")
    try:
        filters = parse_filter(args, known_actions(get_session()))
    except InvalidInput as exc:
        fail(400, "invalid_filter", str(exc).splitlines()[0], exc.problems)
    offset = int(args.get("cursor") or 0)
    session = get_session()
    total = audit_count(session, filters)
    rows = audit_page(session, filters, limit=args["limit"], offset=offset)
    return {"items": [audit_dict(r) for r in rows], "total": total, "next_cursor": _next(offset, args["limit"], total)}
