"""/admin/staff/tokens: admins make, list and revoke staff API tokens (for /api/v1/support), each audited.

Why an admin page and not each staff member's own: a staff token acts on other
people's accounts without a second factor at each use, so handing one out is
an admin's decision with a reason in the audit log, like creating the account.
The secret is shown once, on the page that answers the form, and never again.
"""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectChoice, SelectField, StringField

from errors import UserError
from jobs.audit import Actor, already_done
from jobs.staff_accounts import list_staff
from jobs.staff_tokens import list_staff_tokens, make_staff_token, revoke_staff_token
from store import User, get_db, get_fresh_session, get_session
from store.base import utcnow
from web.admin_pages import REASON, REQUEST_KEY, ReasonForm, fresh_key, reasoned_action
from web.settings_forms import TOKEN_LIFETIMES, token_name
from web.staff_access import staff_required
from web.staff_auth import actor

bp = Blueprint("admin_tokens", __name__, url_prefix="/admin/staff/tokens")


class StaffTokenForm(FlaskForm):
    staff_id = SelectField("Staff member", coerce=int, validate_choice=True)
    name = StringField("What it is for", validators=[token_name])
    lifetime = SelectField("Expires after", choices=TOKEN_LIFETIMES, default="30")
    reason = StringField("Reason", validators=REASON)
    request_key = HiddenField(default=fresh_key, validators=REQUEST_KEY)


def _with_choices(form: StaffTokenForm) -> StaffTokenForm:
    form.staff_id.choices = [
        SelectChoice(row.id, f"{row.email} ({row.role})") for row in list_staff(get_session()) if row.active
    ]
    return form


def _page(form: StaffTokenForm | None = None, status: int = 200, new_token: dict[str, str] | None = None) -> Response:
    me = get_session().get(User, int(current_user.get_id()))
    rows = list_staff_tokens(get_session(), now=utcnow())
    page = render_template(
        "staff/admin_tokens.html",
        rows=rows,
        form=form or _with_choices(StaffTokenForm(formdata=None)),
        revoke_forms={row.id: ReasonForm(formdata=None, prefix=f"r{row.id}") for row in rows if row.usable},
        new_token=new_token,
        zone=me.timezone if me else None,
    )
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"  # the page may hold a secret shown once
    return response


@bp.route("")
@staff_required("admin")
def index() -> Response:
    return _page()


@bp.route("", methods=["POST"])
@staff_required("admin")
def create() -> Response:
    form = _with_choices(StaffTokenForm())
    if not form.validate_on_submit():
        return _page(form, 400)
    with get_db().session(write=True) as session:
        if already_done(session, form.request_key.data):
            flash("Already made by the first click; its secret was shown then. Revoke it and make another if lost.")
            return redirect(url_for("admin_tokens.index"))
        me, staff = session.get(User, int(current_user.get_id())), session.get(User, form.staff_id.data)
        assert me is not None
        try:
            if staff is None:
                raise UserError("That staff member no longer exists.")
            made = make_staff_token(
                session,
                actor(me),
                staff,
                form.name.data or "",
                days=int(form.lifetime.data or 30),
                reason=form.reason.data or "",
                now=utcnow(),
                request_key=form.request_key.data,
            )
        except UserError as exc:
            form.name.errors = [str(exc)]
            return _page(form, 400)
        shown = {"name": made.token.name, "owner": staff.email, "value": made.secret}
    get_fresh_session()  # the request's read snapshot (the form's choices) predates the new token
    return _page(new_token=shown)


@bp.route("/<token_id>/revoke", methods=["POST"])
@staff_required("admin")
def revoke(token_id: str) -> Response:
    def act(session: Session, who: Actor, reason: str, key: str) -> str:
        token = revoke_staff_token(session, who, token_id, reason=reason, now=utcnow(), request_key=key)
        return f"Revoked “{token.name}”: the next request with it gets 401."

    return reasoned_action(
        ReasonForm(prefix=f"r{token_id}"),
        "admin_tokens.index",
        "Say why the token is revoked: it goes into the audit log.",
        act,
    )
