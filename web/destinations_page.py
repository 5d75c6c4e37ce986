"""Settings → Destinations: where archives go (an S3-compatible bucket, email), tested and removed in the browser.

Why its own page: the S3 form (endpoint, region, bucket, prefix, keys or a
role with its ExternalId, and the policy to paste) is long, and at 390 px it
would bury the schedule and token sections. Each action calls the service the
API and the CLI use (`jobs.destination_setup`): adding builds the real backend
first (so a bad region or a private endpoint is refused in words before
anything is stored, and secrets are encrypted), Test probes outside any
transaction and keeps its outcome as the destination's status. Each bucket has
a retention form: "Show what it would delete" lists the bucket and decides,
deleting nothing; "Save" stores the policy, applied after each delivery.

Secrets never come back: the page shows an access key ID masked (`AKIA…WXYZ`),
never the secret key, and a form that failed is re-shown without it.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from delivery.s3.object_lock import MODES
from delivery.s3.policy import iam_policy, trust_policy_json
from errors import DeliveryError, InvalidInput, LifeboatError
from jobs.bucket_retention import run_retention, set_retention
from jobs.destination_backends import Registry
from jobs.destination_confirmation import UNLIMITED, Links, MailBudget, Resent, resend
from jobs.destination_consent import NO_MAIL_SERVER, is_account_address
from jobs.destination_setup import (
    add_destination,
    describe_destinations,
    edit_destination,
    external_id_for,
    remove_destination,
    try_destination,
)
from store import Destination, User, get_db, get_fresh_session, get_session
from store.base import is_row_id, utcnow
from web.destination_forms import EmailForm, RetentionForm, RowForm, S3Form, edit_changes, edit_form
from web.destination_limits import MailboxBudget, counted, limit_links

bp = Blueprint("destinations", __name__, url_prefix="/settings/destinations")

# Where `add_destination`'s problems are shown: its field names, and the form field that owns each.
_S3_FIELDS = {"external_id": "role_arn"}


def _registry() -> Registry:
    return Registry(dict(current_app.config))


def _user(session: Any) -> User:
    user = session.get(User, int(current_user.get_id()))
    if user is None:
        abort(404)
    return user


def _page(status: int = 200, **overrides: Any) -> Response:
    session = get_session()
    user = _user(session)
    registry = _registry()
    s3_form = overrides.pop("s3_form", None) or S3Form()
    external_id = external_id_for(user, registry.external_id_key)
    destinations = describe_destinations(session, registry, user)
    retention_forms = {
        d.id: RetentionForm(formdata=None, prefix=f"retention-{d.id}").fill(d.retention)
        for d in destinations
        if d.kind == "s3"
    }
    retention_forms.update(overrides.pop("retention_forms", {}))
    edit_forms = {d.id: edit_form(d.kind, d.id, d.settings or {}) for d in destinations}
    edit_forms.update(overrides.pop("edit_forms", {}))
    values: dict[str, Any] = {
        "user": user,
        "destinations": destinations,
        "retention_forms": retention_forms,
        "edit_forms": edit_forms,
        "edit_error": None,
        "preview": None,
        "retention_error": None,
        "s3_form": s3_form,
        "email_form": EmailForm(to=user.email),
        "row_form": RowForm(),
        "external_id": external_id,
        "trust_policy": trust_policy_json(current_app.config["AWS_PRINCIPAL_ARN"], external_id),
        "policy": iam_policy(
            s3_form.bucket.data or "YOUR-BUCKET", s3_form.prefix.data or "", lock=s3_form.lock_mode.data in MODES
        ),
        "policy_for": s3_form.bucket.data or None,
        "s3_error": None,
        "email_error": None,
        "tested": None,
    }
    values.update(overrides)
    response = make_response(render_template("destinations.html", **values), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("")
@login_required
def index() -> Response:
    return _page()


def _add(kind: str, label: str, settings: dict[str, Any], budget: MailBudget = UNLIMITED) -> int:
    """Add a destination for the signed-in user; raises `InvalidInput` or `LifeboatError` with the words to show."""
    with get_db().session(write=True) as session:
        return add_destination(session, _registry(), _user(session), kind, label, settings, budget=budget).id


@bp.route("/s3", methods=["POST"])
@login_required
def add_s3() -> Response:
    form = S3Form()
    if not form.validate_on_submit():
        return _page(400, s3_form=form)
    if "show_policy" in request.form:  # "Show the policy for this bucket": nothing is saved
        return _page(s3_form=form)
    try:
        new_id = _add("s3", f"s3://{form.bucket_name}", form.settings())
    except InvalidInput as exc:
        for name, message in exc.problems:
            field = getattr(form, _S3_FIELDS.get(name, name), None)
            if field is not None:
                field.errors = [message]
        return _page(400, s3_form=form, s3_error=str(exc).splitlines()[0])
    except LifeboatError as exc:  # e.g. no encryption keys configured to store the secret
        return _page(409, s3_form=form, s3_error=str(exc))
    flash(f"Bucket {form.bucket_name} added. Press “Test” to check that Lifeboat can write to it.", "info")
    return redirect(url_for("destinations.index", _anchor=f"destination-{new_id}"))


@bp.route("/email", methods=["POST"])
@login_required  # first: a request that is not signed in is turned away uncounted
# Each new address is mailed a link: an account must not flood a stranger's mailbox by adding and removing it.
@limit_links
def add_email() -> Response:
    form = EmailForm()
    if not form.validate_on_submit():
        return _page(400, email_form=form)
    to = (form.to.data or "").strip() or _user(get_session()).email
    budget = MailboxBudget()
    try:
        new_id = _add("email", "", {"to": to}, budget)
    except InvalidInput as exc:
        form.to.errors = [message for _name, message in exc.problems] or [str(exc)]
        return _page(400, email_form=form)
    except LifeboatError as exc:
        return _page(409, email_form=form, email_error=str(exc))
    waits = _waits(new_id)
    if waits is Link.SENT:
        counted()
        flash(f"We emailed a link to {to}: nothing is sent there until someone there follows it. {NOTICE}", "info")
    elif waits is Link.NOT_SENT:
        flash(f"{to} is saved, but waits: {_not_sent_words(budget.wait(to))} {NOTICE}", "error")
    elif waits is Link.NO_MAIL_SERVER:  # nothing mailed, so nothing counted against the mailbox
        flash(
            f"{to} is saved, but waits: this Lifeboat has no mail server, so no link was emailed to it (and no "
            "notice to you). Ask its operator for the link, or press “Send the link again” once mail is set up.",
            "error",
        )
    else:
        flash(f"Archives will also be emailed to {to}. Press “Test” to check the mail server.", "info")
    return redirect(url_for("destinations.index", _anchor=f"destination-{new_id}"))


NOTICE = "We also told your own address, in case it was not you."


class Link(enum.Enum):
    """Whether the destination just written waits for its address's owner, and whether its link went out."""

    SENT = "sent"
    NOT_SENT = "not sent"  # the mailbox had its budget of links (`web.destination_limits.MailboxBudget`)
    NO_MAIL_SERVER = "no mail server"  # made, but only logged: no LIFEBOAT_SMTP_HOST (`NO_MAIL_SERVER`)


def _waits(destination_id: int) -> Link | None:
    """`Link` if the destination just written waits for its address's owner, else None (a fresh read: committed)."""
    session = get_fresh_session()
    row = session.get(Destination, destination_id)
    if row is None or row.kind != "email" or row.confirmed_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or is_account_address(row, user):
        return None
    if row.confirm_sent_at is None:
        return Link.NOT_SENT
    return Link.NO_MAIL_SERVER if row.confirm_refused == NO_MAIL_SERVER else Link.SENT


def _not_sent_words(seconds: int) -> str:
    """Why no link went to a saved address, and when pressing “Send the link again” will work."""
    when = (utcnow() + dt.timedelta(seconds=max(1, seconds))).strftime("%H:%M UTC")
    return (
        "too many confirmation links went to that mailbox lately, so none was sent now. "
        f"Press “Send the link again” after {when}."
    )


@bp.route("/<int:destination_id>/confirmation", methods=["POST"])
@login_required
def resend_confirmation(destination_id: int) -> Response:
    """Mail an email destination's confirmation link again (the first was lost, or expired)."""
    if not RowForm().validate_on_submit():
        abort(400)
    budget = MailboxBudget()
    with get_db().session(write=True) as session:
        done = resend(session, Links.of(_registry()), _user(session), destination_id, now=utcnow(), budget=budget)
        if done is None:
            abort(404)
        outcome, row = done
        to = str(row.settings.get("to") or "")
        unmailed = row.confirm_refused == NO_MAIL_SERVER  # made, but only logged (`Link.NO_MAIL_SERVER`)
    busy = f"No link was sent to {to}: {_not_sent_words(budget.wait(to))}" if outcome is Resent.MAILBOX_BUSY else ""
    hours = _registry().confirm_link_max_age // 3600
    words = {
        Resent.SENT: (
            (f"No link was emailed to {to}: this Lifeboat has no mail server. Ask its operator for the link.", "error")
            if unmailed
            else (f"We emailed a new link to {to}. It works for {hours} hours.", "info")
        ),
        Resent.TOO_SOON: ("A link went out less than a minute ago; wait a moment before asking again.", "error"),
        Resent.MAILBOX_BUSY: (busy, "error"),
        Resent.NOT_WAITING: ("This destination needs no confirmation.", "info"),
    }
    flash(*words[outcome])
    return redirect(url_for("destinations.index", _anchor=f"destination-{destination_id}"))


@bp.route("/<int:destination_id>/test", methods=["POST"])
@login_required
def test(destination_id: int) -> Response:
    if not RowForm().validate_on_submit():
        abort(400)
    outcome = try_destination(get_db(), _registry(), destination_id, int(current_user.get_id()))
    if outcome is None:
        abort(404)  # not this user's destination (or none): the same answer
    get_fresh_session()  # the request's read snapshot predates the outcome just written
    return _page(tested={"id": destination_id, "ok": outcome.ok, "message": outcome.message})


def _edit_refused(status: int, destination_id: int, form: S3Form | EmailForm, message: str) -> Response:
    """The page again with the edit form as typed (secrets left out) and one line saying what to fix."""
    return _page(status, edit_forms={destination_id: form}, edit_error={"id": destination_id, "message": message})


@bp.route("/<int:destination_id>/edit", methods=["POST"])
@login_required
@limit_links  # a new address is mailed a link: changing it back and forth must not flood a mailbox
def edit(destination_id: int) -> Response:
    """Change a destination in place (e.g. a rotated key), then test it and say how that went.

    Keeps its id, retention policy and delivery history, which remove-and-add loses.
    """
    user_id = int(current_user.get_id())
    row = get_session().get(Destination, destination_id) if is_row_id(destination_id) else None
    if row is None or row.user_id != user_id:
        abort(404)  # not this user's destination (or none): the same answer as the other actions
    form = edit_form(row.kind, destination_id)
    old_to = row.settings.get("to") or None
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _edit_refused(400, destination_id, form, "Correct the fields marked below.")
    changes = edit_changes(form)
    if isinstance(form, EmailForm) and not changes["to"]:
        changes["to"] = _user(get_session()).email  # as when adding: empty means the account's address
    budget = MailboxBudget()
    try:
        with get_db().session(write=True) as session:  # an error raised inside rolls the change back
            edited = edit_destination(session, _registry(), _user(session), destination_id, changes, budget=budget)
            label = edited.label if edited is not None else None
    except InvalidInput as exc:
        for name, message in exc.problems:
            field = getattr(form, _S3_FIELDS.get(name, name), None)
            if field is not None:
                field.errors = [message]
        return _edit_refused(400, destination_id, form, str(exc).splitlines()[0])
    except LifeboatError as exc:  # e.g. the keys to read or store its secret are gone
        return _edit_refused(409, destination_id, form, str(exc))
    if label is None:
        abort(404)
    outcome = try_destination(get_db(), _registry(), destination_id, user_id)
    get_fresh_session()  # the request's read snapshot predates the change and the outcome
    waits = _waits(destination_id) if isinstance(form, EmailForm) and old_to != changes["to"] else None
    if waits is Link.SENT:  # a new address
        counted()
        flash(
            f"{label}: saved. We emailed a link to the new address; nothing is sent there until it is followed.", "info"
        )
    elif waits is Link.NOT_SENT:
        flash(f"{label}: saved, but it waits: {_not_sent_words(budget.wait(str(changes['to'])))}", "error")
    else:
        flash(f"{label}: your changes are saved, and Lifeboat tested it again.", "info")
    if outcome is None:  # removed in between, in another tab
        return redirect(url_for("destinations.index"))
    return _page(tested={"id": destination_id, "ok": outcome.ok, "message": outcome.message})


def _refused(status: int, destination_id: int, form: RetentionForm, message: str) -> Response:
    """The page again with the policy as typed and one line saying what to fix, next to that bucket."""
    return _page(
        status, retention_forms={destination_id: form}, retention_error={"id": destination_id, "message": message}
    )


@bp.route("/<int:destination_id>/retention", methods=["POST"])
@login_required
def retention(destination_id: int) -> Response:
    """Save a bucket's retention policy, or ("preview") list what it would delete now, deleting nothing."""
    form = RetentionForm(prefix=f"retention-{destination_id}")
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _refused(400, destination_id, form, "Enter whole numbers from 0 (off) upwards, or leave a rule empty.")
    user_id = int(current_user.get_id())
    policy = form.policy()
    if "preview" in request.form:
        try:
            preview = run_retention(get_db(), _registry(), destination_id, user_id, policy=policy, dry_run=True)
        except DeliveryError as exc:
            return _refused(409, destination_id, form, f"The bucket could not be listed: {exc.user_message}")
        except LifeboatError as exc:
            status = 400 if isinstance(exc, InvalidInput) else 409
            return _refused(status, destination_id, form, str(exc).splitlines()[0])
        if preview is None:
            abort(404)
        return _page(retention_forms={destination_id: form}, preview=preview)
    try:
        with get_db().session(write=True) as session:  # an error raised inside rolls the change back
            row = set_retention(session, _registry(), user_id, destination_id, policy)
            label = row.label if row is not None else None
    except LifeboatError as exc:  # InvalidInput included: its first line names the field
        status = 400 if isinstance(exc, InvalidInput) else 409
        return _refused(status, destination_id, form, str(exc).splitlines()[0])
    if label is None:
        abort(404)
    get_fresh_session()
    flash(f"{label}: {policy.summary()} Applied after each delivery.", "info")
    return redirect(url_for("destinations.index", _anchor=f"destination-{destination_id}"))


@bp.route("/<int:destination_id>/remove", methods=["POST"])
@login_required
def remove(destination_id: int) -> Response:
    if not RowForm().validate_on_submit():
        abort(400)
    with get_db().session(write=True) as session:
        label = remove_destination(session, int(current_user.get_id()), destination_id)
    if label is None:
        abort(404)
    flash(f"{label} removed. Archives already delivered there stay where they are.", "info")
    return redirect(url_for("destinations.index"))
