"""Staff API: the support console's actions on a user, as JSON (`jobs.support_actions` does the work).

Why the same service as the console's forms: the same checks, the same audit
row, the same once-per-request-key rule, whichever door a staff member uses.
The request key comes from the body (`request_key`) or the `Idempotency-Key`
header; a retried call with the same key answers the first call's outcome
with `repeated: true` and does nothing again. Errors have stable codes:
`invalid_input` (422: e.g. no reason), `unknown_user` / `unknown_destination`
(404), `action_refused` (409: the account's state forbids it; nothing done),
`request_key_reused` (409: that key was used for another action or user).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import current_app, request
from marshmallow import Schema, fields, validate

import jobs
from errors import InvalidInput
from jobs import support_actions
from jobs.audit import Actor
from jobs.destination_backends import Registry
from jobs.support_actions import MAX_REASON, MAX_REQUEST_KEY, RESEND_TARGETS, ActionRefused, ActionResult
from store import get_db
from store.base import utcnow
from web.api.blueprint import fail
from web.api.support_blueprint import staff_user, support_bp


class SupportActionInSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_REASON),
        metadata={"description": "Why (kept in the audit log with your name; the user does not see it)."},
    )
    request_key = fields.String(
        validate=validate.Length(min=1, max=MAX_REQUEST_KEY),
        metadata={"description": "Makes a retry safe: the same key acts once. Or send an `Idempotency-Key` header."},
    )


class ResendInSchema(SupportActionInSchema):
    archive_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    to = fields.String(
        required=True,
        validate=validate.OneOf(RESEND_TARGETS),
        metadata={"description": "`destinations`: the user's destinations; `email`: their account's address."},
    )


class SupportActionSchema(Schema):
    action = fields.String(required=True, metadata={"example": "archive.resend"})
    ok = fields.Boolean(required=True)
    message = fields.String(required=True, metadata={"description": "What happened, in words."})
    repeated = fields.Boolean(required=True, metadata={"description": "True: this key was seen; nothing done again."})
    run_id = fields.String(allow_none=True, required=True, metadata={"description": "The run queued, if any."})
    queued = fields.Boolean(required=True)


def _act(body: dict[str, Any], action: Callable[[Actor, str, str | None], ActionResult]) -> dict[str, Any]:
    try:
        key = support_actions.client_request_key(body.get("request_key") or request.headers.get("Idempotency-Key"))
        result = action(Actor.of(staff_user(), request.remote_addr), body.get("reason", ""), key)
    except support_actions.RequestKeyReused as exc:
        fail(409, "request_key_reused", str(exc))
    except InvalidInput as exc:
        fail(422, "invalid_input", str(exc).splitlines()[0], exc.problems)
    except support_actions.UnknownTarget as exc:
        fail(404, f"unknown_{exc.kind}", str(exc))
    except ActionRefused as exc:
        fail(409, "action_refused", f"Nothing was done: {exc}")
    if result.refused:  # the same key again after a refusal: the same answer as the first time
        fail(409, "action_refused", result.message)
    if result.queued:
        jobs.kick()
    return asdict(result)


@support_bp.route("/users/<int:user_id>/resend", methods=["POST"])
@support_bp.arguments(ResendInSchema)
@support_bp.response(200, SupportActionSchema)
def post_resend(body: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Send an existing archive again (the same bytes) to the user's destinations or their email address.

    Queues a run with trigger "support" that delivers that archive (never a new
    export); it is retried like any run and shows in the user's History.
    """
    return _act(
        body,
        lambda actor, reason, key: support_actions.resend_archive(
            get_db(),
            actor,
            user_id,
            body["archive_id"],
            body["to"],
            reason=reason,
            request_key=key,
            now=utcnow(),
            email_ready=bool(current_app.config["SMTP_HOST"]),
        ),
    )


@support_bp.route("/users/<int:user_id>/export", methods=["POST"])
@support_bp.arguments(SupportActionInSchema)
@support_bp.response(200, SupportActionSchema)
def post_export(body: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Start a fresh export for the user now (one already running is not doubled)."""
    return _act(
        body,
        lambda actor, reason, key: support_actions.export_now(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@support_bp.route("/users/<int:user_id>/pause", methods=["POST"])
@support_bp.arguments(SupportActionInSchema)
@support_bp.response(200, SupportActionSchema)
def post_pause(body: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Pause the user's scheduled exports."""
    return _act(
        body,
        lambda actor, reason, key: support_actions.pause_schedule(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@support_bp.route("/users/<int:user_id>/resume", methods=["POST"])
@support_bp.arguments(SupportActionInSchema)
@support_bp.response(200, SupportActionSchema)
def post_resume(body: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Resume a paused schedule (not one the user switched off), its next run computed from now."""
    return _act(
        body,
        lambda actor, reason, key: support_actions.resume_schedule(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@support_bp.route("/users/<int:user_id>/destinations/<int:destination_id>/retest", methods=["POST"])
@support_bp.arguments(SupportActionInSchema)
@support_bp.response(200, SupportActionSchema)
def post_retest(body: dict[str, Any], user_id: int, destination_id: int) -> dict[str, Any]:
    """Clear a destination's error (the user fixed it) and test it now; `ok` is the test's outcome."""
    registry = Registry(dict(current_app.config))
    return _act(
        body,
        lambda actor, reason, key: support_actions.retest_destination(
            get_db(), registry, actor, user_id, destination_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@support_bp.route("/users/<int:user_id>/revoke-credentials", methods=["POST"])
@support_bp.arguments(SupportActionInSchema)
@support_bp.response(200, SupportActionSchema)
def post_revoke_credentials(body: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Revoke every download link and API token of the user's."""
    return _act(
        body,
        lambda actor, reason, key: support_actions.revoke_credentials(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )
