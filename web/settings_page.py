"""The settings page: export schedule (with a preview of the next runs), archive options, API tokens.

Why each section posts to its own route: a page with one big form would
make a typo in the schedule throw away a token name being typed, and the
answer to each post can say precisely what changed. Each view checks its
form and calls one service: `jobs.user_schedule` for the schedule (which
recomputes the next run at once), `jobs.archive_options` for the vCard version
and the kinds of data included (the rules the API applies too),
`jobs.api_tokens` for tokens (the same service the JSON API uses); the
encryption key goes through `jobs.archive_options` too.

A new token's secret is rendered in the response to the post that made it,
never put in the (client-side) session or a flash message, and the page is
marked no-store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from delivery.sealing import MAX_KEY_TEXT, looks_private
from errors import InvalidInput
from jobs import api_tokens
from jobs.archive_options import (
    ArchiveOptions,
    key_expiry,
    kinds_of,
    save_archive_options,
    seal_key_of,
    seal_state,
    stopped_words,
)
from jobs.copy_checks import copy_checks
from jobs.destination_setup import list_destinations
from jobs.schedule import ScheduleSpec, upcoming_runs, zone_names
from jobs.user_schedule import (
    ScheduleChange,
    find_schedule,
    own_delay_words,
    preview_delay_words,
    save_schedule,
    spread_words,
    switch_off,
)
from store import User, get_db, get_fresh_session, get_session
from store.base import utcnow
from web.destination_places import places, receiving_states
from web.settings_forms import ArchiveForm, RevokeForm, ScheduleForm, SealKeyForm, TokenForm

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _user(session: Any) -> User:
    user = session.get(User, int(current_user.get_id()))
    if user is None:
        abort(404)
    return user


def _when(moments: list[dt.datetime], zone: str) -> list[dict[str, str]]:
    """Runs in the user's zone for reading, with the UTC instant for `<time datetime>`."""
    tz = ZoneInfo(zone)
    return [
        {"iso": m.isoformat(), "text": m.astimezone(tz).strftime("%a %d %b %Y, %H:%M") + f" ({zone})"} for m in moments
    ]


def _schedule_form(user: User) -> ScheduleForm:
    row = find_schedule(get_session(), user)
    if row is None:
        return ScheduleForm(formdata=None, frequency="off", timezone=user.timezone or "UTC")
    return ScheduleForm(
        formdata=None,
        frequency=row.frequency if row.enabled else "off",
        time_of_day=row.time_of_day,
        weekday=row.weekday,
        day_of_month=row.day_of_month,
        timezone=row.timezone,
    )


def _saved_runs(user: User) -> list[dict[str, str]]:
    row = find_schedule(get_session(), user)
    if row is None or not row.enabled or row.next_run_at is None:
        return []
    runs = [row.next_run_at, *upcoming_runs(ScheduleSpec.from_row(row), row.next_run_at, 2)]
    return _when(runs, row.timezone)


def _page(user: User, status: int = 200, **overrides: Any) -> Response:
    """The page with each section showing its saved values, but for the forms in `overrides`.

    Why `formdata=None` for the saved values: during a post, a form built
    without it reads the posted fields, which belong to another section; a
    refused schedule then showed every archive kind unchecked (user trial),
    and saving those options next failed for want of a kind.
    """
    seal, seal_problem = seal_state(user)  # parsed once: an OpenPGP key is checked by encrypting to it
    values: dict[str, Any] = {
        "user": user,
        "schedule_form": _schedule_form(user),
        "archive_form": ArchiveForm(
            formdata=None, vcard_version=user.vcard_version or "default", kinds=list(kinds_of(user))
        ),
        "token_form": TokenForm(formdata=None),
        "seal_form": SealKeyForm(formdata=None, seal_key=user.seal_key or ""),
        "seal": seal,
        "seal_problem": seal_problem,
        "seal_expiry": key_expiry(seal, utcnow()),  # expired since it was given, or expiring within 30 days
        "revoke_form": RevokeForm(),
        "next_runs": _saved_runs(user),
        "schedule_spread": spread_words(),
        "schedule_delay": own_delay_words(find_schedule(get_session(), user)),
        "preview": None,
        "preview_delay": None,
        "zones": zone_names(),
        "server_vcard": current_app.config["VCARD_VERSION"],
        "tokens": api_tokens.list_tokens(get_session(), user.id),
        # Only those that receive archives count as places; a waiting address is named as waiting.
        "places": (where := places(list_destinations(get_session(), user), user)),
        "receiving": receiving_states(where.receiving, copy_checks(get_session(), user.id), user),
        "new_token": None,
        "paused": getattr(find_schedule(get_session(), user), "paused_reason", None),
    }
    values.update(overrides)
    response = make_response(render_template("settings.html", **values), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("")
@login_required
def index() -> Response:
    return _page(_user(get_session()))


@bp.route("/schedule", methods=["POST"])
@login_required
def schedule() -> Response:
    user = _user(get_session())
    form = ScheduleForm()
    if not form.validate_on_submit():
        return _page(user, 400, schedule_form=form)
    if form.frequency.data == "off":
        if form.preview.data:
            return _page(user, schedule_form=form, preview=[])
        with get_db().session(write=True) as session:
            switch_off(session, _user(session))
        flash("Scheduled exports are off. Your archives are kept.", "info")
        return redirect(url_for("settings.index", _anchor="schedule"))
    change = ScheduleChange(
        frequency=form.frequency.data,
        time_of_day=form.time_of_day.data,
        timezone=form.timezone.data,
        weekday=form.weekday.data,
        day_of_month=form.day_of_month.data,
    )
    spec = ScheduleSpec(user_id=user.id, **dataclasses.asdict(change))
    try:
        runs = upcoming_runs(spec, utcnow())
    except InvalidInput as exc:
        for name, message in exc.problems:
            getattr(form, name).errors = [message]
        return _page(user, 400, schedule_form=form)
    preview: dict[str, Any] = {"preview": _when(runs, spec.timezone), "preview_delay": preview_delay_words(spec)}
    if form.preview.data:
        return _page(user, schedule_form=form, **preview)
    if user.email_confirmed_at is None:
        flash("Confirm your email address first: scheduled exports start once it is confirmed.", "error")
        return _page(user, 403, schedule_form=form, **preview)
    with get_db().session(write=True) as session:
        row_user = _user(session)
        save_schedule(session, row_user, change, now=utcnow())
        row_user.timezone = spec.timezone  # times elsewhere are shown in this zone too
    flash("Schedule saved. The next runs are listed below.", "info")
    return redirect(url_for("settings.index", _anchor="schedule"))


@bp.route("/archive", methods=["POST"])
@login_required
def archive() -> Response:
    form = ArchiveForm()
    if not form.validate_on_submit():
        return _page(_user(get_session()), 400, archive_form=form)
    try:
        with get_db().session(write=True) as session:
            change = ArchiveOptions(vcard_version=form.vcard_version.data, kinds=form.kinds.data or [])
            save_archive_options(session, _user(session), change, now=utcnow())
    except InvalidInput as exc:
        for name, message in exc.problems:
            getattr(form, name).errors = [message]
        return _page(_user(get_session()), 400, archive_form=form)
    flash("Archive options saved; they apply from the next export.", "info")
    return redirect(url_for("settings.index", _anchor="archive"))


@bp.route("/encryption", methods=["POST"])
@login_required
def encryption() -> Response:
    form = SealKeyForm()
    if not form.validate_on_submit():
        return _page(_user(get_session()), 400, seal_form=form)
    text = "" if form.stop.data else (form.seal_key.data or "")
    if not text.strip() and not form.stop.data:
        user = _user(get_session())
        stop = " or choose Stop encrypting" if user.seal_key else ""
        form.seal_key.errors = [f"Paste your public key{stop}."]
        return _page(user, 400, seal_form=form)
    try:
        with get_db().session(write=True) as session:
            user = _user(session)
            revoked = save_archive_options(session, user, ArchiveOptions(seal_key=text), now=utcnow())
            seal = seal_key_of(user)
    except InvalidInput as exc:
        form.seal_key.errors = [message for _, message in exc.problems[:1]]
        if looks_private(text) or len(text) > MAX_KEY_TEXT:
            form.seal_key.data = ""  # never send a private key (or a megabyte) back to the browser
        return _page(_user(get_session()), 400, seal_form=form)
    if seal is None:
        flash(stopped_words(revoked), "info")
    else:
        flash(f"From the next export on, archives are encrypted to your {seal.label} before they leave.", "info")
    return redirect(url_for("settings.index", _anchor="encryption"))


@bp.route("/tokens", methods=["POST"])
@login_required
def create_token() -> Response:
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(_user(get_session()), 400, token_form=form)
    with get_db().session(write=True) as session:
        made = api_tokens.create_token(
            session, _user(session).id, form.name.data or "", days=int(form.lifetime.data), now=utcnow()
        )
        name = made.token.name
    return _page(_user(get_fresh_session()), new_token={"name": name, "value": made.secret})


@bp.route("/tokens/<token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: str) -> Response:
    if not RevokeForm().validate_on_submit():
        abort(400)
    with get_db().session(write=True) as session:
        token = api_tokens.revoke_token(session, _user(session).id, token_id, now=utcnow())
    if token is None:
        abort(404)  # not this user's token (or no such token): the same answer
    flash("Token revoked. Scripts using it are refused from now on.", "info")
    return redirect(url_for("settings.index", _anchor="tokens"))
