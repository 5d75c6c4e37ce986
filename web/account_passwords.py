"""Passwords: change one (signed in), or reset a forgotten one by an emailed link that works once.

Why the link is bound to the password hash: a signed link cannot be deleted
once sent, so "works once" has to come from what it names. It carries the
user id and `reset_fingerprint` (a digest of the current password hash);
choosing a password gives a new salted hash, so that link, and every other
one sent before, stops working. It also expires (LIFEBOAT_RESET_LINK_MAX_AGE).

Why the request page never says whether an address has an account: the same
sentence, the same status and about the same time answer every address. The
mail server is asked about the address in every case (`account_mail.probe`),
and the page says what it answered (took it, refused it, put it off); the
reset mail itself, only for an account, goes out in the background. Requests are limited per target address and
per client (web/limits.py), counted whether or not a mail went out.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, login_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from jobs import account_mail
from jobs.account_mail import Outcome
from store import User, get_db, get_session
from store.accounts import find_user
from store.base import utcnow
from store.passwords import check_password, reset_fingerprint, set_password
from web import limiter
from web.account_forms import PasswordChangeForm, ResetForm, ResetRequestForm
from web.auth import SESSION_VERSION_KEY, SessionUser
from web.limits import (
    account_limits,
    failed_sign_in,
    mail_account_key,
    mail_account_limits,
    mail_address_key,
    mail_address_limits,
)
from web.mail_pages import mail_page

# A password change signs sessions out, not API tokens (a script on a NAS keeps running); the message said
# only "sessions", and a user trial took the tokens to be revoked too.
TOKENS_STAY = "Your API tokens keep working: revoke any you no longer trust under Settings, Personal API tokens."
bp = Blueprint("account", __name__)

RESET_SALT = "lifeboat.password-reset.v1"
SENT = (
    "If {email} has a Lifeboat account, a link to choose a new password is on its way. "
    "It works once, within {minutes} minutes. Nothing arrived? Check the spam folder, or ask again later."
)
BAD_LINK = "This password reset link is not valid. Ask for a new one below."
USED_LINK = "This password reset link was already used or replaced by a newer one. Ask for a new one below."
OLD_LINK = "This password reset link has expired. Ask for a new one below."


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def reset_link(user: User) -> str:
    """An absolute link (for email) that lets the owner of `user`'s address choose a password, once."""
    token = _serializer().dumps({"u": user.id, "f": reset_fingerprint(user)})
    return current_app.config["BASE_URL"].rstrip("/") + url_for("account.reset", token=token)


def _claim(token: str) -> tuple[int, str]:
    """The user id and password fingerprint a genuine, unexpired link carries; else ValueError with words."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["RESET_LINK_MAX_AGE"])
    except SignatureExpired:
        raise ValueError(OLD_LINK) from None
    except BadSignature:
        raise ValueError(BAD_LINK) from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("f"), str):
        raise ValueError(BAD_LINK)
    return data["u"], data["f"]


def user_for_reset(session: Session, token: str) -> User:
    """The user the link names while it is valid, unused and unexpired; else ValueError with words to show."""
    user_id, fingerprint = _claim(token)
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise ValueError(BAD_LINK)
    if fingerprint != reset_fingerprint(user):
        raise ValueError(USED_LINK)
    return user


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(mail_account_limits, key_func=mail_account_key, methods=["POST"])
@limiter.limit(mail_address_limits, key_func=mail_address_key, methods=["POST"])
def reset_request() -> str:
    form = ResetRequestForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        user = find_user(get_session(), email)
        minutes = current_app.config["RESET_LINK_MAX_AGE"] // 60
        # Asked about the address whether or not it has an account, so the answer (and its time) is the same.
        result = account_mail.outcome(account_mail.probe(current_app.config, email))
        if user is not None and user.is_active and result.outcome is not Outcome.REFUSED:
            account_mail.send(current_app.config, account_mail.password_reset(user.email, reset_link(user), minutes))
        return mail_page(result, email, SENT.format(email=email, minutes=minutes))
    return render_template("reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> str | Response:
    try:
        user_for_reset(get_session(), token)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("account.reset_request"))
    form = ResetForm()
    if not form.validate_on_submit():
        return render_template("reset.html", form=form)
    with get_db().session(write=True) as db_session:
        try:
            # Checked again inside the write: two tabs submitting the same link set one password.
            user = user_for_reset(db_session, token)
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(url_for("account.reset_request"))
        set_password(user, form.password.data or "")
        # Following a link sent to the address proves it is theirs.
        user.email_confirmed_at = user.email_confirmed_at or utcnow()
        address = user.email
    _tell_password_changed(address, "with a reset link")
    flash(f"Your new password is set, and every other session is signed out. {TOKENS_STAY} Sign in now.", "info")
    return redirect(url_for("auth.login"))


def _tell_password_changed(address: str, how: str) -> None:
    """Mail the account's address that its password changed (after the change is committed; in the background)."""
    page = current_app.config["BASE_URL"].rstrip("/") + url_for("account.reset_request")
    account_mail.send(current_app.config, account_mail.password_changed(address, how, utcnow(), page))


def _signed_in_key() -> str:
    return f"password-change:{current_user.get_id()}"


@bp.route("/account/password", methods=["GET", "POST"])
@limiter.limit(account_limits, key_func=_signed_in_key, methods=["POST"], deduct_when=failed_sign_in)
@login_required
def change_password() -> str | Response:
    """Change the password; this session stays signed in, every other one is signed out."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        with get_db().session(write=True) as db_session:
            user = db_session.get(User, int(current_user.get_id()))
            if user is None or not check_password(user, form.current.data or ""):
                form.current.errors = ["That is not your current password."]
                return render_template("password.html", form=form)
            set_password(user, form.password.data or "")
            version = user.session_version
            signed_in = SessionUser(user)
            address = user.email
        _tell_password_changed(address, "in your settings")
        login_user(signed_in)
        session[SESSION_VERSION_KEY] = version
        flash(f"Password changed. Every other session of yours is now signed out. {TOKENS_STAY}", "info")
        return redirect(url_for("settings.index"))
    return render_template("password.html", form=form)
