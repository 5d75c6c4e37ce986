"""/admin/staff: admins list, create and deactivate support and admin accounts, each change audited.

Why a new account gets no password here: the admin would have to pass it on,
and it would sit in a chat window. The new staff member gets the ordinary
password-reset email instead (`web.account_passwords.reset_link`: works once,
expires), chooses a password, and enrols an authenticator at first sign-in.

Without a mail server (no LIFEBOAT_SMTP_HOST) no email can go, so the page
that answers the form shows the admin the one-time link to hand over
privately: once, in the response (never in a flash, which would outlive it),
and not cached.

Why the page waits for the mail server's answer (`jobs.account_mail.outcome`,
as sign-up and password resets do): it said "a link is on its way" while the
server had refused the address (550) or put it off (451). Now a message the
server took is said as sent; a temporary failure as delayed (it is tried again
in the background); and a refusal, or a fault in Lifeboat's own mail settings,
shows the server's words, what to check, and the one-time link to hand over
as when there is no mail server: the account exists, and nothing else would
reach the person.

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
from jobs.account_mail import Outcome, Result
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
        return _handover(email, role, link, minutes, Result(Outcome.LOGGED))
    sending = account_mail.send(current_app.config, staff_invitation(email, role, link, minutes))
    result = account_mail.outcome(sending)
    if result.outcome is Outcome.SENT:
        flash(f"Created {role} account {email} and emailed them a link to choose a password.", "info")
    elif result.outcome is Outcome.DELAYED:
        flash(f"Created {role} account {email}. " + DELAYED.format(email=email), "info")
    else:
        return _handover(email, role, link, minutes, result)
    return redirect(url_for("admin_staff.index"))


# What the admin reads when the invitation did not go (the account exists either way): how the mail
# server answered (`jobs.account_mail.Outcome`), then what to do. The words follow `web.mail_pages`.
DELAYED = (
    "The mail server could not take mail for {email} just now, so the email with their link has not arrived yet. "
    "Lifeboat tries again over the next few minutes. If it never arrives, they can ask for a new link with "
    "\u201cForgot your password?\u201d on the sign-in page."
)
NOT_SENT = {
    Outcome.LOGGED: "Email is not set up on this server (no mail server, LIFEBOAT_SMTP_HOST), so no email was sent.",
    Outcome.REFUSED: (
        "The mail server refused to take mail for {email}, so no email was sent. The mail server said: {reply}. "
        "Check the address: if it is misspelled, deactivate this account and create one with the right address; "
        "if it is right, its mailbox may not take mail yet."
    ),
    Outcome.FAILED: (
        "Lifeboat could not send mail to {email} because of a problem with its own mail settings (the server's log "
        "says which), so no email was sent. Tell whoever runs this Lifeboat."
    ),
}
# After the link: how the person gets a new one if it expires (a reset email, or the operator's log).
LATER = {
    Outcome.LOGGED: (
        "If it expires first, \u201cForgot your password?\u201d on the sign-in page makes a new one: with no mail "
        "server, that link is written to the server's log for its operator."
    ),
    Outcome.REFUSED: (
        "If it expires first, \u201cForgot your password?\u201d on the sign-in page emails a new one, once the "
        "mail server takes mail for their address."
    ),
    Outcome.FAILED: (
        "If it expires first, \u201cForgot your password?\u201d on the sign-in page emails a new one, once "
        "Lifeboat's mail settings are mended."
    ),
}


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


def _handover(email: str, role: str, link: str, minutes: int, result: Result) -> Response:
    """The list page with the new account's one-time link, for the admin to pass on (no email could take it).

    `result` says why: no mail server (LOGGED), the address refused, or Lifeboat's own mail settings.
    """
    get_fresh_session()  # the request's read snapshot predates the new account: list it
    why = NOT_SENT[result.outcome].format(email=email, reply=(result.reply or "no reason given").rstrip("."))
    handover = {
        "email": email,
        "role": role,
        "link": link,
        "minutes": minutes,
        "why": why,
        "later": LATER[result.outcome],
        "alert": result.outcome is not Outcome.LOGGED,  # the address or the settings need a look
    }
    page, status = _page(handover=handover)
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
