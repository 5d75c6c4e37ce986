"""Staff sign-in's second step (TOTP or a recovery code), and what a staff session may not open.

Why a second step after the password: a support or admin account reaches every
user's delivery history, so a password alone (phished, reused) must not open
it. The password step (`web.auth.login`) signs a staff member in but not
through: until this step sets `STAFF_VERIFIED_KEY`, `staff_required` sends them
here. A first sign-in enrols an authenticator app (QR code and the secret in
text), then shows ten recovery codes once.

Why one app-wide hook (`guard_staff_session`) rather than a check in each view:
staff never read user content and cannot act as a user, and a page added next
year must be closed to them without anyone remembering to. So a staff session
opens only the paths in `STAFF_PATHS` (console, admin, sign-in and out, static
files) and gets 403 everywhere else; the user API refuses staff on its own
(`web.api.blueprint.authenticate`, code `staff_forbidden`). The same hook signs
a staff member out after LIFEBOAT_STAFF_IDLE_MINUTES without a request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import segno
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from jobs.audit import Actor, record
from jobs.staff_accounts import (
    SIGN_IN,
    StaffError,
    Verdict,
    check_totp,
    confirm_enrolment,
    enrolment_secret,
    looks_like_recovery_code,
    provisioning_uri,
    recovery_codes_left,
    use_recovery_code,
)
from store import User, get_db, get_session
from store.base import utcnow
from web import limiter
from web.redirects import safe_next
from web.staff_access import STAFF_VERIFIED_KEY, is_staff

bp = Blueprint("staff_auth", __name__)

CONSOLE = "/support"  # the support console (its own blueprint); a plain path so this works without it
SEEN_KEY = "staff_seen"  # when this staff session last made a request (POSIX seconds)
NEXT_KEY = "staff_next"  # the console page a staff member asked for before signing in (see `remember_next`)
CONSOLE_PATHS = ("/support", "/admin/")  # where `next` may lead a staff member after the second factor
# What a staff session may open; everything else is a user's page and answers 403 (see the module docstring).
STAFF_PATHS = ("/support", "/admin/", "/staff/", "/static/", "/login", "/logout", "/reset", "/healthz", "/automate")
NOT_FOR_STAFF = (
    "Staff accounts cannot open users' pages, files or links: support sees what happened, never content. "
    "Use the support console."
)


class CodeForm(FlaskForm):
    code = StringField(
        "Code from your authenticator app, or a recovery code",
        validators=[DataRequired("Enter the 6-digit code from your app."), Length(max=64, message="Too long.")],
    )


# ---- the sign-in audit ------------------------------------------------------------------------------


def actor(user: User) -> Actor:
    return Actor.of(user, address=request.remote_addr)


def audit_password_refused(user: User) -> None:
    """A staff account's password step failed: the audit log keeps every staff sign-in attempt."""
    why = "wrong password" if user.is_active else "account deactivated"
    with get_db().session(write=True) as db_session:
        record(
            db_session, actor(user), SIGN_IN, now=utcnow(), outcome="refused", detail={"step": "password", "why": why}
        )


def start_second_factor() -> Response:
    """After the password step of a staff member: not through yet (see the module docstring)."""
    session.pop(STAFF_VERIFIED_KEY, None)
    session[SEEN_KEY] = utcnow().timestamp()
    session.pop(NEXT_KEY, None)
    remember_next(request.args.get("next"))
    return redirect(url_for("staff_auth.second_factor"))


def remember_next(target: str | None) -> None:
    """Keep the console page a staff member was sent to sign in from, to open it once the code is accepted.

    Why: a link to one user's console page (in a ticket, or the page an idle
    sign-out left) used to land on the queue after the second factor, and the
    user had to be found again. Only console and admin pages are kept: a staff
    session opens nothing else.
    """
    path = safe_next(target)
    if path is not None and path.startswith(CONSOLE_PATHS):
        session[NEXT_KEY] = path.removesuffix("?")  # `request.full_path` ends a bare path with "?"


# ---- the second step --------------------------------------------------------------------------------


def _code_limits() -> str:
    return str(current_app.config["STAFF_CODE_LIMITS"])


def _code_key() -> str:
    return f"second-factor:{current_user.get_id()}"


def _code_refused(_response: Response) -> bool:
    return bool(g.get("code_refused"))


@bp.route("/staff/sign-in", methods=["GET", "POST"])
@limiter.limit(_code_limits, key_func=_code_key, methods=["POST"], deduct_when=_code_refused)
def second_factor() -> str | Response | tuple[str, int]:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if not is_staff():
        abort(403)  # users have no second step: this page is for staff only
    if session.get(STAFF_VERIFIED_KEY):
        return redirect(CONSOLE)
    if request.method == "GET":
        remember_next(request.args.get("next"))  # from `staff_required`, for a page opened before this step
    user = get_session().get(User, int(current_user.get_id()))
    assert user is not None  # the user loader found it
    if user.totp_confirmed_at is None:
        return _enrol()
    form = CodeForm()
    if form.validate_on_submit():
        code = (form.code.data or "").strip()
        with get_db().session(write=True) as db_session:
            row = db_session.get(User, user.id)
            assert row is not None
            now = utcnow()
            if looks_like_recovery_code(code):
                verdict = use_recovery_code(db_session, row, code, now)
            else:
                verdict = check_totp(db_session, dict(current_app.config), row, code, now)
            _audit(db_session, row, verdict, now)
            left = recovery_codes_left(db_session, row.id)
        if verdict.ok:
            if verdict.method == "recovery code":
                flash(f"Recovery code accepted; you have {left} left, each good once.", "info")
            return _verified()
        g.code_refused = True
        form.code.errors = [_refusal(verdict)]
    return render_template("staff/second_factor.html", form=form)


def _enrol() -> str | Response | tuple[str, int]:
    """Show the new secret (QR code and text); a correct code puts it in force and shows recovery codes once."""
    form = CodeForm()
    form.code.label.text = "Code from your authenticator app"  # recovery codes come after enrolment
    config: dict[str, Any] = dict(current_app.config)
    with get_db().session(write=True) as db_session:
        row = db_session.get(User, int(current_user.get_id()))
        assert row is not None
        try:
            secret = enrolment_secret(db_session, config, row)
        except StaffError as exc:  # the server cannot keep second-factor secrets: say so, not a 500
            abort(503, str(exc))
        email = row.email
        codes: list[str] = []
        if form.validate_on_submit():
            now = utcnow()
            verdict = check_totp(db_session, config, row, form.code.data or "", now)
            if verdict.ok:
                codes = confirm_enrolment(db_session, row, now)
                verdict = Verdict(True, method="totp enrolment", step=verdict.step)
            _audit(db_session, row, verdict, now)
            if not verdict.ok:
                g.code_refused = True
                form.code.errors = [_refusal(verdict)]
    if codes:
        onward = _verified().location  # the codes are shown on this answer, once; the page links on from there
        return render_template("staff/recovery_codes.html", codes=codes, console=onward)
    return render_template("staff/enrol.html", form=form, secret=secret, qr=_qr_svg(provisioning_uri(secret, email)))


def _audit(db_session: Session, user: User, verdict: Verdict, now: dt.datetime) -> None:
    outcome = "ok" if verdict.ok else "refused"
    record(
        db_session, actor(user), SIGN_IN, now=now, outcome=outcome, detail={"step": "second factor", **verdict.detail()}
    )


def _refusal(verdict: Verdict) -> str:
    if verdict.why == "code already used":
        return "That code was just used. Wait for your app to show the next one."
    if verdict.method == "recovery code":
        return "That recovery code is not one of yours, or it was already used."
    return "That code is not right. Check your app's clock and enter the code it shows now."


def _verified() -> Response:
    """Through: on to the console page asked for before signing in (`remember_next`), or the queue."""
    session[STAFF_VERIFIED_KEY] = True
    session[SEEN_KEY] = utcnow().timestamp()
    return redirect(session.pop(NEXT_KEY, None) or CONSOLE)


def _qr_svg(uri: str) -> Markup:
    """The provisioning URI as an inline SVG QR code, named for screen readers (the secret is also in text)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, omitsize=True, title="QR code for your authenticator app", dark="#111"
    )
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1))  # noqa: S704 - segno's own SVG, no user input but the escaped URI


# ---- what a staff session may open, and for how long -----------------------------------------------


@bp.before_app_request
def guard_staff_session() -> Response | None:
    """Sign idle staff out, send staff from `/` to the console, and refuse them every user page."""
    if not is_staff():
        return None
    now = utcnow().timestamp()
    seen = session.get(SEEN_KEY)
    idle = current_app.config["STAFF_IDLE_MINUTES"] * 60
    # No mark yet (a session begun before this hook existed): the idle clock starts now.
    if isinstance(seen, int | float) and now - seen > idle:
        logout_user()
        session.clear()
        flash(
            f"You were signed out after {current_app.config['STAFF_IDLE_MINUTES']} minutes without activity. "
            "Sign in again.",
            "info",
        )
        # Back to the same page after signing in again (a page, not a form post that would be lost anyway).
        page = request.full_path.removesuffix("?")
        again = page if request.method == "GET" and request.path.startswith(CONSOLE_PATHS) else None
        return redirect(url_for("auth.login", next=again))
    session[SEEN_KEY] = now
    path = request.path
    if path == "/":
        return redirect(CONSOLE if session.get(STAFF_VERIFIED_KEY) else url_for("staff_auth.second_factor"))
    if path.startswith("/api/") or path.startswith(STAFF_PATHS):
        return None  # the API blueprints answer staff themselves, in JSON
    abort(403, NOT_FOR_STAFF)
