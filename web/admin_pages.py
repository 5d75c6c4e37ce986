"""/admin/staff: admins list, create and deactivate support and admin accounts, each change audited.

Why a new account gets no password here: the admin would have to pass it on,
and it would sit in a chat window. The new staff member gets the ordinary
password-reset email instead (`web.account_passwords.reset_link`: works once,
expires), chooses a password, and enrols an authenticator at first sign-in.

Without a mail server (no LIFEBOAT_SMTP_HOST) no email can go, so the page
that answers the form shows the admin the one-time link to hand over
privately: once, in the response (never in a flash, which would outlive it),
and not cached.

Why a request key in every form: a double click (or a resubmitted page) must
act once; the second submission finds the first one's audit row
(`jobs.audit.already_done`) and only reports it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import EmailField, Field, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, ValidationError

from errors import InvalidInput, UserError
from jobs import account_mail
from jobs.audit import Actor, already_done
from jobs.staff_accounts import create_staff, deactivate, list_staff, with_article
from jobs.support_actions import check_reason, check_request_key
from store import User, get_db, get_fresh_session, get_session
from store.base import utcnow
from store.staff import STAFF_ROLES
from web.account_forms import REQUIRED_EMAIL, canonical_email
from web.account_passwords import reset_link
from web.staff_access import staff_required
from web.staff_auth import actor

bp = Blueprint("admin_staff", __name__, url_prefix="/admin/staff")


def audit_reason(_form: FlaskForm, field: Field) -> None:
    """Hold a reason to the audit log's rule (`check_reason`) at the field, and keep it as it will be stored.

    Why here as well as in the services: the admin sees what to fix beside the
    box, not a 500 (PostgreSQL refuses NUL in text) or a message under another field.
    """
    if not (field.data or "").strip():
        return  # DataRequired has said it
    try:
        field.data = check_reason(field.data)
    except InvalidInput as exc:
        raise ValidationError(str(exc).splitlines()[0]) from None


def audit_request_key(_form: FlaskForm, field: Field) -> None:
    """A form's request key as the audit log stores it: 1 to 128 printable characters, or the form is refused."""
    try:
        check_request_key(field.data or "")
    except InvalidInput as exc:
        raise ValidationError(str(exc).splitlines()[0]) from None


REASON = [DataRequired("Say why: it goes into the audit log."), audit_reason]
REQUEST_KEY = [DataRequired(), audit_request_key]


def fresh_key() -> str:
    return secrets.token_urlsafe(18)


class CreateStaffForm(FlaskForm):
    email = EmailField("Email", validators=[REQUIRED_EMAIL, canonical_email])
    role = SelectField(
        "Role", choices=[SelectChoice(name, name.capitalize()) for name in STAFF_ROLES], default="support"
    )
    reason = StringField("Reason", validators=REASON)
    request_key = HiddenField(default=fresh_key, validators=REQUEST_KEY)


class ReasonForm(FlaskForm):
    """A row button's form: why (for the audit log), and the key that makes a double click act once."""

    reason = StringField("Reason", validators=REASON)
    request_key = HiddenField(default=fresh_key, validators=REQUEST_KEY)


def _page(
    form: CreateStaffForm | None = None, status: int = 200, handover: dict[str, object] | None = None
) -> tuple[str, int]:
    rows = list_staff(get_session())
    me = get_session().get(User, int(current_user.get_id()))
    deactivate_forms = {row.id: ReasonForm(formdata=None, prefix=f"d{row.id}") for row in rows if row.active}
    page = render_template(
        "staff/admin_staff.html",
        rows=rows,
        form=form or CreateStaffForm(formdata=None),
        deactivate_forms=deactivate_forms,
        me=me.id if me else None,
        zone=me.timezone if me else None,
        handover=handover,
    )
    return page, status


@bp.route("")
@staff_required("admin")
def index() -> tuple[str, int]:
    return _page()


@bp.route("", methods=["POST"])
@staff_required("admin")
def create() -> Response | tuple[str, int]:
    form = CreateStaffForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    email, role = form.email.data or "", form.role.data or ""
    link = ""
    with get_db().session(write=True) as db_session:
        if already_done(db_session, form.request_key.data):
            flash(f"Already done: {email} was created by the first click.", "info")
            return redirect(url_for("admin_staff.index"))
        me = db_session.get(User, int(current_user.get_id()))
        assert me is not None
        try:
            user = create_staff(
                db_session,
                actor(me),
                email,
                role,
                password=None,
                reason=form.reason.data or "",
                now=utcnow(),
                request_key=form.request_key.data,
            )
        except UserError as exc:
            form.email.errors = [str(exc)]
            return _page(form, 400)
        link = reset_link(user)
    minutes = current_app.config["RESET_LINK_MAX_AGE"] // 60
    if not account_mail.can_send(current_app.config):
        return _handover(email, role, link, minutes)
    account_mail.send(current_app.config, staff_invitation(email, role, link, minutes))
    flash(f"Created {role} account {email}; a link to choose a password is on its way to them.", "info")
    return redirect(url_for("admin_staff.index"))


def staff_invitation(to: str, role: str, link: str, minutes: int) -> account_mail.AccountMail:
    """The new staff member's email: an invitation from an admin, with the link to choose a password.

    Why not the password-reset email: it says "someone (we hope you) asked"
    and "if it was not you, ignore this message", and a new staff member, who
    asked for nothing, would rightly ignore it (trial 14).
    """
    text = (
        "Hello,\n\n"
        f"An administrator of Lifeboat made you {with_article(role)} account with this address.\n"
        f"Choose your password with this link within {minutes} minutes; it works once:\n\n{link}\n\n"
        "At your first sign-in you will also set up an authenticator app, which gives the code asked after the "
        "password.\n"
        "If the link has expired, use \u201cForgot your password?\u201d on the sign-in page. If you did not expect "
        "this email, tell your Lifeboat administrator: nobody can sign in to the account until a password is chosen.\n"
    )
    return account_mail.AccountMail(to, f"Your Lifeboat {role} account: choose a password", text, link)


def _handover(email: str, role: str, link: str, minutes: int) -> Response:
    """The list page with the new account's one-time link, for the admin to pass on (no mail server to send it)."""
    get_fresh_session()  # the request's read snapshot predates the new account: list it
    page, status = _page(handover={"email": email, "role": role, "link": link, "minutes": minutes})
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"  # the page holds a link that sets a password
    return response


def reasoned_action(
    form: ReasonForm, back: str, missing_reason: str, act: Callable[[Session, Actor, str, str], str]
) -> Response:
    """An admin page's row button: a reason, once per request key, the change and its audit row in one write.

    `act(session, actor, reason, request_key)` makes the change (writing its
    audit row) and returns what to tell the admin; a `UserError` is shown as is.
    """
    if not form.validate_on_submit():
        given = (form.reason.data or "").strip()
        flash(form.reason.errors[0] if given and form.reason.errors else missing_reason, "error")
        return redirect(url_for(back))
    with get_db().session(write=True) as db_session:
        if already_done(db_session, form.request_key.data):
            flash("Already done by the first click.", "info")
            return redirect(url_for(back))
        me = db_session.get(User, int(current_user.get_id()))
        assert me is not None
        try:
            message = act(db_session, actor(me), form.reason.data or "", form.request_key.data or "")
        except UserError as exc:
            flash(str(exc), "error")
            return redirect(url_for(back))
    flash(message, "info")
    return redirect(url_for(back))


@bp.route("/<int:user_id>/deactivate", methods=["POST"])
@staff_required("admin")
def deactivate_staff(user_id: int) -> Response:
    def act(db_session: Session, who: Actor, reason: str, key: str) -> str:
        user = deactivate(db_session, who, user_id, reason=reason, now=utcnow(), request_key=key)
        return f"Deactivated {user.email}: their sessions ended and they can no longer sign in."

    return reasoned_action(
        ReasonForm(prefix=f"d{user_id}"),
        "admin_staff.index",
        "Say why the account is deactivated: it goes into the audit log.",
        act,
    )
