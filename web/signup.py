"""Sign up, and confirm the address by a signed link (LIFEBOAT_SIGNUP_ENABLED switches sign-up off).

Why the answer never depends on the address: "this address already has an
account" would tell anyone whose address is registered here. Both cases get
the same page; the address's owner learns which by email (a confirmation
link, or "you already have an account" with a reset link). The password is
hashed in both cases and the same address is mailed, so the time taken says
nothing either, nor does what the page says of the mail server's answer
(took it, refused the address, put it off: `web.mail_pages`). Nobody is signed in by signing up, for the same reason.

Why an unconfirmed account may sign in but not export (web/export_now.py and
the schedule in web/settings_page.py check `email_confirmed_at`): a new account
holds nothing yet, so looking around is harmless, while an export sends mail
(failure notices, an email destination defaulting to the account's address)
to an address nobody has shown is theirs. Accounts an operator creates count
as confirmed (they typed the address).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from jobs import account_mail
from jobs.account_mail import Outcome
from store import User, get_db, get_session
from store.accounts import find_user
from store.base import utcnow
from store.passwords import hash_password
from web import limiter
from web.account_forms import ResendForm, SignUpForm
from web.account_passwords import reset_link
from web.limits import mail_account_key, mail_account_limits, mail_address_key, mail_address_limits
from web.mail_pages import mail_page, words

bp = Blueprint("signup", __name__)

CONFIRM_SALT = "lifeboat.confirm-email.v1"
SENT = (
    "We sent a message to {email}. Follow the link in it to confirm your address, then sign in. "
    "Nothing arrived? Check the spam folder; the link works for {hours} hours."
)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CONFIRM_SALT)


def confirm_link(user: User) -> str:
    """An absolute link that confirms `user`'s current address (a changed address needs a new one)."""
    token = _serializer().dumps({"u": user.id, "e": user.email})
    return current_app.config["BASE_URL"].rstrip("/") + url_for("signup.confirm", token=token)


def _hours() -> int:
    return max(1, current_app.config["CONFIRM_LINK_MAX_AGE"] // 3600)


def _require_enabled() -> None:
    if not current_app.config["SIGNUP_ENABLED"]:
        abort(404)


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(mail_account_limits, key_func=mail_account_key, methods=["POST"])
@limiter.limit(mail_address_limits, key_func=mail_address_key, methods=["POST"])
def signup() -> str:
    _require_enabled()
    form = SignUpForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        password_hash = hash_password(form.password.data or "")  # in both cases: the same time either way
        try:
            with get_db().session(write=True) as session:
                existing = find_user(session, email)
                if existing is None:
                    zone = form.timezone.data or "UTC"  # the browser's, checked (`known_zone`)
                    user = User(email=email, display_name=form.name.data, password_hash=password_hash, timezone=zone)
                    session.add(user)
                    session.flush()
                    mail = account_mail.confirmation(email, confirm_link(user), _hours())
                else:
                    mail = account_mail.already_registered(existing.email, reset_link(existing))
        except IntegrityError:
            mail = None  # the same address signed up at the same moment: that sign-up sends the mail
        # Both cases mail the same address, so what the server answered says nothing of an account.
        sending = account_mail.send(current_app.config, mail) if mail else account_mail.probe(current_app.config, email)
        return mail_page(account_mail.outcome(sending), email, SENT.format(email=email, hours=_hours()))
    return render_template("signup.html", form=form)


@bp.route("/confirm/<token>")
def confirm(token: str) -> Response:
    """Confirm the address; opening the link again (or a mail scanner opening it first) is harmless."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["CONFIRM_LINK_MAX_AGE"])
    except SignatureExpired:
        flash("This confirmation link has expired. Sign in and ask for a new one.", "error")
        return redirect(url_for("auth.login"))
    except BadSignature:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("e"), str):
        flash("This confirmation link is not valid. Sign in and ask for a new one.", "error")
        return redirect(url_for("auth.login"))
    with get_db().session(write=True) as session:
        user = session.get(User, data["u"])
        if user is None or user.email != data["e"]:
            flash("This confirmation link is not valid. Sign in and ask for a new one.", "error")
            return redirect(url_for("auth.login"))
        user.email_confirmed_at = user.email_confirmed_at or utcnow()
    flash("Your address is confirmed. Thank you!", "info")
    return redirect(url_for("dashboard.index") if current_user.is_authenticated else url_for("auth.login"))


def _signed_in_email() -> str:
    return "mail-to:" + str(current_user.get_id())


@bp.route("/confirm/resend", methods=["POST"])
@limiter.limit(mail_account_limits, key_func=_signed_in_email)
@login_required
def resend() -> Response:
    if not ResendForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    user = get_session().get(User, int(current_user.get_id()))
    assert user is not None
    if user.email_confirmed_at is None:
        mail = account_mail.confirmation(user.email, confirm_link(user), _hours())
        result = account_mail.outcome(account_mail.send(current_app.config, mail))
        said = words(result, user.email, f"We sent a new confirmation link to {user.email}.")
        flash(said, "error" if result.outcome in (Outcome.REFUSED, Outcome.FAILED) else "info")
    return redirect(url_for("dashboard.index"))


def is_confirmed(user_id: str | None) -> bool:
    """Whether the signed-in user may export (see the module docstring)."""
    user = get_session().get(User, int(user_id)) if user_id and user_id.isdigit() else None
    return user is not None and user.email_confirmed_at is not None
