"""Sign in and out. Passwords are hashed with Argon2id."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import UserMixin, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from store import User, get_session
from store.accounts import find_user
from store.passwords import check_password
from web import login_manager

bp = Blueprint("auth", __name__)


class SessionUser(UserMixin):
    """What Flask-Login keeps per request: the id only, so no ORM row outlives its session."""

    def __init__(self, user: User) -> None:
        self.id = str(user.id)
        self.email = user.email
        self.is_support = user.is_support


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    user = get_session().get(User, int(user_id)) if user_id.isdigit() else None
    return SessionUser(user) if user is not None and user.is_active else None


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(get_session(), form.email.data or "")
        if check_password(user, form.password.data or ""):
            assert user is not None
            login_user(SessionUser(user))
            target = request.args.get("next", "")
            # Only same-site relative paths: never an open redirect.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("dashboard.index")
            return redirect(target)
        flash("Wrong email or password.", "error")
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
