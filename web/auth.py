"""Sign in and out. Passwords are hashed with Argon2id.

Why a session version: Flask keeps the session in a signed cookie on the
client, so signing out cannot delete a copy someone captured earlier. Every
session therefore carries the user's `session_version` at sign-in, the user
loader accepts it only while it still matches the database, and signing out
(or changing the password, `store.passwords.set_password`) bumps the number:
every older cookie stops working at once, on every device.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from store import User, get_db, get_session
from store.accounts import find_user
from store.passwords import check_password, end_sessions
from store.staff import STAFF_ROLES
from web import limiter, login_manager, staff_auth
from web.account_forms import email_length
from web.limits import account_key, account_limits, address_key, address_limits, failed_sign_in
from web.redirects import safe_next

bp = Blueprint("auth", __name__)

SESSION_VERSION_KEY = "session_version"


class SessionUser(UserMixin):
    """What Flask-Login keeps per request: the id only, so no ORM row outlives its session."""

    def __init__(self, user: User) -> None:
        self.id = str(user.id)
        self.email = user.email
        self.is_support = user.is_support
        self.role = user.role  # user, support or admin: web/staff_access.py decides what each may open
        self.session_version = user.session_version
        # False for a web sign-up until its address is confirmed (web/signup.py): a banner, no exports.
        self.email_confirmed = user.email_confirmed_at is not None


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    """The signed-in user, or None if the account is gone, inactive or this session was ended."""
    user = get_session().get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.is_active:
        return None
    # A cookie from before the last sign-out or password change carries an older number
    # (or none at all, like cookies issued before sessions were versioned).
    if session.get(SESSION_VERSION_KEY) != user.session_version:
        return None
    # Kept for this request only (g ends with the request's session): the session's identity
    # map holds rows weakly, so without this reference the dashboard read the same row again.
    g.signed_in_row = user
    return SessionUser(user)


def signed_in_row() -> User:
    """The signed-in user's row in the request's session, as the user loader read it (no second query)."""
    user = g.get("signed_in_row")
    if user is None or str(user.id) != current_user.get_id():
        user = get_session().get(User, int(current_user.get_id()))
    assert user is not None
    return user


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), email_length])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(account_limits, key_func=account_key, methods=["POST"], deduct_when=failed_sign_in)
@limiter.limit(address_limits, key_func=address_key, methods=["POST"], deduct_when=failed_sign_in)
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(get_session(), form.email.data or "")
        if check_password(user, form.password.data or ""):
            assert user is not None
            login_user(SessionUser(user))
            session[SESSION_VERSION_KEY] = user.session_version
            if user.role in STAFF_ROLES:  # not through yet: the second factor comes next
                return staff_auth.start_second_factor()
            return redirect(landing(request.args.get("next")))
        if user is not None and user.role in STAFF_ROLES:
            staff_auth.audit_password_refused(user)
        flash("Wrong email or password.", "error")
    return render_template("login.html", form=form)


def expired_sign_in() -> tuple[str, int]:
    """The sign-in form sat open too long (or its cookie went): show it again, saying so."""
    flash("The sign-in form expired. Please sign in again.", "error")
    # The email is kept (it is no secret and saves typing); the password is asked again.
    form = LoginForm(formdata=None, email=(request.form.get("email") or "")[:320])
    return render_template("login.html", form=form), 400


def landing(next_value: str | None) -> str:
    """Where to go after signing in: `next` if it is a page of ours that opens with GET, else the dashboard.

    Why the GET check: a form posted after the session ended (Export now in a tab
    left open after signing out elsewhere) sends the browser here with `next`
    naming a POST-only address; following it would show "405 Method Not
    Allowed". The action is not repeated behind the user's back either: they
    land on the dashboard, told to press the button again.
    """
    target = safe_next(next_value)
    if target is None:
        return url_for("dashboard.index")
    adapter = current_app.create_url_adapter(request)
    try:
        if adapter is not None:
            adapter.match(urlsplit(target).path, method="GET")
    except MethodNotAllowed:
        flash("You were signed out, so that was not done. Nothing was started: press the button again.", "info")
        return url_for("dashboard.index")
    except HTTPException:
        pass  # a redirect or a 404 is the target's own business
    return target


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """End this session and every other one of this user's, wherever its cookie is."""
    # A short write transaction of its own: the request's session is read-only (store.db).
    with get_db().session(write=True) as db_session:
        user = db_session.get(User, int(current_user.get_id()))
        if user is not None:
            end_sessions(user)
    logout_user()
    session.pop(SESSION_VERSION_KEY, None)
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
