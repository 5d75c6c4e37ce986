"""The support console's action buttons: one small form per action, each posting here.

Why a module of its own: the console's pages (another blueprint) only show;
this one only acts, through `jobs.support_actions`, which checks, audits and
makes each action happen once per request key. Every form carries a fresh
random `request_key` (`fresh_request_key()` in the template), so a double
click or a resubmitted form finds the first action's audit row and shows its
outcome instead of acting again. The answer is always a redirect back to the
user's console page with the outcome flashed in words; a bad reason is a 400
page saying what to fix, an unknown user or destination a 404.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, request
from flask_login import current_user
from werkzeug.wrappers import Response

import jobs
from errors import InvalidInput
from jobs import support_actions
from jobs.audit import Actor
from jobs.destination_backends import Registry
from jobs.support_actions import ActionRefused, ActionResult, UnknownTarget
from store import User, get_db, get_session
from store.base import utcnow
from web.staff_access import staff_required

bp = Blueprint("support_actions", __name__, url_prefix="/support/users/<int:user_id>")


@bp.app_template_global("fresh_request_key")
def fresh_request_key() -> str:
    """A new key for each rendered form: the same form submitted twice acts once."""
    return secrets.token_urlsafe(24)


def acting_staff() -> Actor:
    """The signed-in staff member, as the audit log names them, and the address they came from."""
    user = get_session().get(User, int(current_user.get_id()))
    if user is None:
        abort(403)
    return Actor.of(user, request.remote_addr)


def _act(user_id: int, action: Callable[[Actor, str, str | None], ActionResult]) -> Response:
    """Run `action(actor, reason, request_key)`, flash its outcome, and go back to the user's page."""
    try:
        key = support_actions.client_request_key(request.form.get("request_key") or None)
        result = action(acting_staff(), request.form.get("reason", ""), key)
    except InvalidInput as exc:
        abort(400, str(exc).splitlines()[0] + " Go back, fix it and press the button again; nothing was done.")
    except UnknownTarget as exc:
        abort(404, str(exc))
    except ActionRefused as exc:
        flash(f"Nothing was done: {exc}", "error")
    else:
        if result.queued:
            jobs.kick()
        note = " (this form was already sent: nothing was done again)" if result.repeated else ""
        flash(result.message + note, "info" if result.ok else "error")
    return redirect(f"/support/users/{user_id}")


@bp.route("/resend", methods=["POST"])
@staff_required()
def resend(user_id: int) -> Response:
    archive_id, to = request.form.get("archive_id", ""), request.form.get("to", "destinations")
    return _act(
        user_id,
        lambda actor, reason, key: support_actions.resend_archive(
            get_db(),
            actor,
            user_id,
            archive_id,
            to,
            reason=reason,
            request_key=key,
            now=utcnow(),
            email_ready=bool(current_app.config["SMTP_HOST"]),
        ),
    )


@bp.route("/export", methods=["POST"])
@staff_required()
def export(user_id: int) -> Response:
    return _act(
        user_id,
        lambda actor, reason, key: support_actions.export_now(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@bp.route("/pause", methods=["POST"])
@staff_required()
def pause(user_id: int) -> Response:
    return _act(
        user_id,
        lambda actor, reason, key: support_actions.pause_schedule(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@bp.route("/resume", methods=["POST"])
@staff_required()
def resume(user_id: int) -> Response:
    return _act(
        user_id,
        lambda actor, reason, key: support_actions.resume_schedule(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@bp.route("/destinations/<int:destination_id>/retest", methods=["POST"])
@staff_required()
def retest(user_id: int, destination_id: int) -> Response:
    registry = Registry(dict(current_app.config))
    return _act(
        user_id,
        lambda actor, reason, key: support_actions.retest_destination(
            get_db(), registry, actor, user_id, destination_id, reason=reason, request_key=key, now=utcnow()
        ),
    )


@bp.route("/revoke-credentials", methods=["POST"])
@staff_required()
def revoke_credentials(user_id: int) -> Response:
    return _act(
        user_id,
        lambda actor, reason, key: support_actions.revoke_credentials(
            get_db(), actor, user_id, reason=reason, request_key=key, now=utcnow()
        ),
    )
