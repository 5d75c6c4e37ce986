"""API: where archives go (S3-compatible buckets, email), tested on demand, removed at will.

Secrets (access keys) go in and never come out: responses carry
`jobs.destination_setup.public_view`, which says only whether one is set.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from flask import abort, current_app

from delivery.retention_policy import Decision, RetentionPolicy
from errors import DeliveryError, InvalidInput, LifeboatError
from jobs.bucket_retention import Preview, policy_from_form, run_retention, set_retention
from jobs.copy_checks import copy_checks
from jobs.destination_backends import Registry
from jobs.destination_confirmation import Links, Resent, mails_pending, resend, too_soon_for
from jobs.destination_consent import NO_MAIL_SERVER, is_account_address, recipient
from jobs.destination_setup import (
    AlreadyAdded,
    add_destination,
    checked_view,
    edit_destination,
    public_view,
    public_views,
    remove_destination,
    try_destination,
)
from store import Destination, User, get_db, get_session
from store.base import is_row_id, utcnow
from web.api import retention_schemas, schemas
from web.api.blueprint import bp, current_api_user, error_response, fail, user_id
from web.destination_limits import MailboxBudget, counted, limit_links

TOO_MANY_LINKS_DOC = (
    "This account sent too many confirmation links to this address (LIFEBOAT_ACCOUNT_MAIL_ACCOUNT_LIMITS, per "
    "account and mailbox, shared with the web pages): try again after `Retry-After` seconds. When other accounts "
    "spent the mailbox's budget, the destination is saved instead, waiting, with `confirmation_resend_at`."
)
ALREADY_ADDED_DOC = (
    "`destination_exists`: the account already has a destination there (the same address, the account's own "
    "whether named or left out, or the same bucket and folder); the message names it and its id. Also "
    "`cannot_store_destination` when a secret cannot be stored (no encryption keys)."
)
TOO_SOON_DOC = (
    "The last link went out under a minute ago, or the address's mailbox had its budget of links "
    "(LIFEBOAT_ACCOUNT_MAIL_ACCOUNT_LIMITS, from any account): try again after `Retry-After` seconds."
)


def _registry() -> Registry:
    return Registry(dict(current_app.config))


def _own(session: Any, destination_id: int) -> Destination:
    row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
    if row is None or row.user_id != user_id():
        fail(404, "not_found", "You have no destination with this id.")
    return row


@bp.route("/destinations")
@bp.response(200, schemas.DestinationSchema(many=True))
def get_destinations() -> list[dict[str, Any]]:
    """Where your archives go, with the outcome of the last delivery or test, and of the last check of the copy there.

    A copy a later check found missing or changed reads `"status": "error"` with the check's words
    (`copy_check` says what and since when) until a later check or delivery finds it good again. An email
    address whose owner has not followed the link mailed to it reads `"status": "waiting"`.
    """
    return public_views(get_session(), current_api_user())


@bp.route("/destinations/<int:destination_id>")
@bp.response(200, schemas.DestinationSchema)
def get_destination(destination_id: int) -> dict[str, Any]:
    """One of your destinations, as an item of `GET /destinations` shows it (another account's id: 404)."""
    session = get_session()
    row = _own(session, destination_id)
    user = current_api_user()
    return public_view(row, copy_checks(session, user.id).get(row.id), user)


@bp.route("/destinations", methods=["POST"])
@limit_links  # an address is mailed a link: adding and removing it again must not flood its mailbox
@bp.arguments(schemas.DestinationInSchema)
@bp.response(201, schemas.DestinationSchema)
@bp.alt_response(409, schema=schemas.ErrorSchema, description=ALREADY_ADDED_DOC)
@bp.alt_response(429, schema=schemas.ErrorSchema, description=TOO_MANY_LINKS_DOC)
def post_destination(body: dict[str, Any]) -> dict[str, Any]:
    """Add an S3-compatible bucket (`bucket`, keys or `role_arn`, …) or an email address (`to`).

    An email address other than the account's own is mailed a link and answers
    `status` "waiting", `confirmed` false: nothing is sent there until someone
    there follows the link. The account's own address is told it was added.
    Without `label` it is named as the page and the CLI name it: `s3://bucket`
    or `email address`.
    """
    kind = body.pop("kind")
    label = body.pop("label", "")  # none: named as the page and the CLI name it (`default_label`)
    budget = MailboxBudget()
    with get_db().session(write=True) as session:
        user = session.get(User, user_id())
        assert user is not None
        try:
            row = add_destination(session, _registry(), user, kind, label, body, budget=budget)
        except AlreadyAdded as exc:
            fail(409, "destination_exists", str(exc).splitlines()[0])
        except InvalidInput as exc:
            fail(422, "invalid_destination", str(exc).splitlines()[0], exc.problems)
        except LifeboatError as exc:  # e.g. no encryption keys configured to store the secret
            fail(409, "cannot_store_destination", str(exc))
        if mails_pending(session):
            counted()
        return _with_resend_time(checked_view(session, row), row, user, budget)


def _with_resend_time(shown: dict[str, Any], row: Destination, user: User, budget: MailboxBudget) -> dict[str, Any]:
    """`shown` with `confirmation_resend_at` when the address waits but no link could be mailed now."""
    waiting = row.kind == "email" and row.confirmed_at is None and not is_account_address(row, user)
    if waiting and row.confirm_sent_at is None:
        shown["confirmation_resend_at"] = utcnow() + dt.timedelta(seconds=max(1, budget.wait(recipient(row))))
    return shown


@bp.route("/destinations/<int:destination_id>/test", methods=["POST"])
@bp.response(200, schemas.DestinationTestSchema)
def test(destination_id: int) -> dict[str, Any]:
    """Try the destination now (connect, check access); the outcome is also kept as its status.

    The network call happens outside any write transaction; only its outcome is written.
    """
    return _tested(destination_id)


def _tested(destination_id: int) -> dict[str, Any]:
    """Test the destination now (outside any write transaction) and answer with the outcome and the destination."""
    outcome = try_destination(get_db(), _registry(), destination_id, user_id())
    if outcome is None:
        fail(404, "not_found", "You have no destination with this id.")
    with get_db().session() as session:
        return {
            "ok": outcome.ok,
            "message": outcome.message,
            "destination": checked_view(session, _own(session, destination_id)),
        }


@bp.route("/destinations/<int:destination_id>", methods=["PATCH"])
@limit_links  # a new address is mailed a link: changing it back and forth must not flood a mailbox
@bp.arguments(schemas.DestinationPatchSchema)
@bp.response(200, schemas.DestinationTestSchema)
@bp.alt_response(429, schema=schemas.ErrorSchema, description=TOO_MANY_LINKS_DOC)
def patch_destination(body: dict[str, Any], destination_id: int) -> dict[str, Any]:
    """Change a destination in place (e.g. a rotated key), then test it; id, retention and history stay.

    Validated as POST is (same 422 `invalid_destination` problems). The error
    status is cleared and the destination tested at once: `ok` and `message` say
    how that went, `destination` is what GET shows. Secrets are never returned.
    """
    budget = MailboxBudget()
    with get_db().session(write=True) as session:
        user = session.get(User, user_id())
        assert user is not None
        try:
            row = edit_destination(session, _registry(), user, destination_id, body, budget=budget)
        except AlreadyAdded as exc:
            fail(409, "destination_exists", str(exc).splitlines()[0])
        except InvalidInput as exc:
            fail(422, "invalid_destination", str(exc).splitlines()[0], exc.problems)
        except LifeboatError as exc:  # e.g. the keys to read or store its secret are gone
            fail(409, "cannot_store_destination", str(exc))
        if row is None:
            fail(404, "not_found", "You have no destination with this id.")
        if mails_pending(session):
            counted()
        moved = "to" in body and row.confirm_sent_at is None
        shown = _with_resend_time({}, row, user, budget) if moved else {}
    tested = _tested(destination_id)
    tested["destination"].update(shown)
    return tested


@bp.route("/destinations/<int:destination_id>/confirmation", methods=["POST"])
@bp.response(200, schemas.DestinationConfirmationSchema)
@bp.alt_response(429, schema=schemas.ErrorSchema, description=TOO_SOON_DOC)
def resend_confirmation(destination_id: int) -> dict[str, Any]:
    """Email the confirmation link of a waiting email destination again (at most once a minute).

    A new email address gets nothing until someone there follows the link; it
    expires after LIFEBOAT_CONFIRM_LINK_MAX_AGE. `sent` is false (with why in
    `message`) when the destination needs no confirmation, or when this Lifeboat
    has no mail server (the link was made, but mailed to nobody). Within a minute of
    the last link, or while the address's mailbox has had its budget of links
    (from any account), the answer is 429 with `Retry-After`.
    """
    budget = MailboxBudget()
    now = utcnow()
    with get_db().session(write=True) as session:
        user = session.get(User, user_id())
        assert user is not None
        done = resend(session, Links.of(_registry()), user, destination_id, now=now, budget=budget)
        if done is None:
            fail(404, "not_found", "You have no destination with this id.")
        outcome, row = done
        if outcome is Resent.TOO_SOON:
            _too_many(too_soon_for(row, now), RESENT_WORDS[outcome])
        if outcome is Resent.MAILBOX_BUSY:
            _too_many(budget.wait(recipient(row)), RESENT_WORDS[outcome])
        unmailed = outcome is Resent.SENT and row.confirm_refused == NO_MAIL_SERVER  # made, but only logged
        return {
            "sent": outcome is Resent.SENT and not unmailed,
            "message": NOT_MAILED_WORDS if unmailed else RESENT_WORDS[outcome],
            "destination": checked_view(session, row),
        }


def _too_many(seconds: int, message: str) -> NoReturn:
    """429 in the shape every 429 of the API has (`web.limits.too_many_attempts`), with `Retry-After`."""
    abort(error_response(429, "too_many_requests", message, headers={"Retry-After": str(max(1, seconds))}))


RESENT_WORDS = {
    Resent.SENT: "A new link went out; nothing is sent to this address until someone there follows it.",
    Resent.TOO_SOON: "A link went out less than a minute ago: try again after `Retry-After` seconds.",
    Resent.MAILBOX_BUSY: (
        "Too many confirmation links went to this address lately (from any account): "
        "try again after `Retry-After` seconds."
    ),
    Resent.NOT_WAITING: "This destination needs no confirmation.",
}
NOT_MAILED_WORDS = (
    "No link was emailed: this Lifeboat has no mail server (LIFEBOAT_SMTP_HOST). Ask its operator for the link."
)


@bp.route("/destinations/<int:destination_id>", methods=["DELETE"])
@bp.response(204)
def delete_destination(destination_id: int) -> None:
    """Remove a destination. Archives already delivered there stay where they are."""
    with get_db().session(write=True) as session:
        if remove_destination(session, user_id(), destination_id) is None:
            fail(404, "not_found", "You have no destination with this id.")


def _policy_from(body: dict[str, Any]) -> RetentionPolicy:
    try:
        return policy_from_form(body)
    except InvalidInput as exc:
        fail(422, "invalid_retention", str(exc).splitlines()[0], exc.problems)


@bp.route("/destinations/<int:destination_id>/retention", methods=["PUT"])
@bp.arguments(retention_schemas.RetentionInSchema)
@bp.response(200, schemas.DestinationSchema)
def put_retention(body: dict[str, Any], destination_id: int) -> dict[str, Any]:
    """Choose which archives stay in the bucket: the last N plus one a day/week/month/year (a rule left out is off).

    Applied after each successful delivery; the newest verified archive is never
    deleted. Try it first with `POST …/retention/dry-run`.
    """
    policy = _policy_from(body)
    with get_db().session(write=True) as session:
        try:
            row = set_retention(session, _registry(), user_id(), destination_id, policy)
        except InvalidInput as exc:
            fail(422, "invalid_retention", str(exc).splitlines()[0], exc.problems)
        except LifeboatError as exc:  # e.g. the keys to read its secret are gone
            fail(409, "cannot_store_destination", str(exc))
        if row is None:
            fail(404, "not_found", "You have no destination with this id.")
        return checked_view(session, row)


@bp.route("/destinations/<int:destination_id>/retention/dry-run", methods=["POST"])
@bp.arguments(retention_schemas.RetentionInSchema)
@bp.response(200, retention_schemas.RetentionRunSchema)
def retention_dry_run(body: dict[str, Any], destination_id: int) -> dict[str, Any]:
    """What a policy would delete from the bucket now, and why each other archive stays; nothing is deleted.

    With no counts in the body, the destination's saved policy is tried; with
    any, that policy (a rule left out is off). The bucket is listed, so this
    takes as long as listing it does.
    """
    policy = _policy_from(body) if body else None
    try:
        preview = run_retention(get_db(), _registry(), destination_id, user_id(), policy=policy, dry_run=True)
    except InvalidInput as exc:
        fail(422, "invalid_retention", str(exc).splitlines()[0], exc.problems)
    except DeliveryError as exc:
        fail(409, "bucket_unavailable", exc.user_message)
    except LifeboatError as exc:
        fail(409, "bucket_unavailable", str(exc))
    if preview is None:
        fail(404, "not_found", "You have no destination with this id.")
    return retention_fields(preview)


def retention_fields(preview: Preview) -> dict[str, Any]:
    """A dry run (or pruning) as the API shows it."""
    report = preview.report

    def decided(decisions: list[Decision]) -> list[dict[str, Any]]:
        return [
            {"key": d.key, "created_at": d.created_at, "verified": d.verified, "reasons": list(d.reasons)}
            for d in decisions
        ]

    counts = {k: v or 0 for k, v in preview.policy.as_settings().items()}
    return {
        "destination_id": preview.destination_id,
        "dry_run": report.dry_run,
        "policy": {**counts, "summary": preview.policy.summary()},
        "summary": report.summary(),
        "note": report.plan.note,
        "delete": decided(report.plan.delete),
        "keep": decided(report.plan.keep),
        "deleted": list(report.deleted),
        "skipped": [f"{s.key}: {s.why}" for s in report.skipped],
    }
