"""API: who I am, what Lifeboat holds, my export schedule and archive options, my API tokens."""

from __future__ import annotations

from typing import Any

from flask import current_app

from errors import InvalidInput
from exporters.archive.counts import counts_line
from jobs import api_tokens
from jobs.archive_options import ArchiveOptions, key_expiry, kinds_of, save_archive_options, seal_state
from jobs.user_schedule import ScheduleChange, describe, find_schedule, fixed_delay, save_schedule, switch_off
from store import ApiToken, Schedule, User, get_db, get_session
from store.accounts import AccountReader
from store.base import utcnow
from web.api import schemas
from web.api.blueprint import bp, current_api_user, fail, user_id


@bp.route("/me")
@bp.response(200, schemas.MeSchema)
def me() -> dict[str, Any]:
    """The account this token acts for."""
    user = current_api_user()
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "timezone": user.timezone,
        "vcard_version": user.vcard_version or current_app.config["VCARD_VERSION"],
    }


@bp.route("/counts")
@bp.response(200, schemas.CountsSchema)
def counts() -> dict[str, Any]:
    """What Lifeboat holds for you now: the same figures as the dashboard and every archive's manifest."""
    user = current_api_user()
    figures = AccountReader(get_session(), user).counts().as_dict()
    return {**figures, "summary": counts_line(figures), "last_change_at": user.data_updated_at}


def _schedule_view(row: Schedule | None) -> dict[str, Any]:
    keys = ("frequency", "time_of_day", "timezone", "weekday", "day_of_month", "next_run_at", "paused_reason")
    view: dict[str, Any] = {key: getattr(row, key) if row is not None else None for key in keys}
    view["enabled"] = bool(row is not None and row.enabled)
    view["description"] = describe(row)
    view["delay_seconds"] = int(fixed_delay(row).total_seconds()) if row is not None else None
    return view


@bp.route("/schedule")
@bp.response(200, schemas.ScheduleSchema)
def get_schedule() -> dict[str, Any]:
    """When exports run by themselves."""
    return _schedule_view(find_schedule(get_session(), current_api_user()))


@bp.route("/schedule", methods=["PUT"])
@bp.arguments(schemas.ScheduleInSchema)
@bp.response(200, schemas.ScheduleSchema)
def put_schedule(body: dict[str, Any]) -> dict[str, Any]:
    """Set (and switch on) or switch off the schedule; a wrong field is a 422 naming each problem."""
    enabled = body.pop("enabled", True)
    with get_db().session(write=True) as session:
        user = session.get(User, user_id())
        assert user is not None
        if enabled or body:  # settings sent with `enabled: false` are checked and kept, switched off
            try:
                save_schedule(session, user, ScheduleChange(**body), now=utcnow())
            except InvalidInput as exc:
                fail(422, "invalid_schedule", str(exc).splitlines()[0], exc.problems)
        if not enabled:
            switch_off(session, user)
        return _schedule_view(find_schedule(session, user))


def _options_view(user: User) -> dict[str, Any]:
    seal, problem = seal_state(user)  # parsed once: an OpenPGP key is checked by encrypting to it
    return {
        "vcard_version": user.vcard_version or "default",
        "effective_vcard_version": user.vcard_version or current_app.config["VCARD_VERSION"],
        "kinds": list(kinds_of(user)),
        "seal_key": user.seal_key,
        "sealed_to": seal.label if seal is not None else None,
        "seal_problem": problem,
        "seal_key_expires_at": seal.expires if seal is not None else None,
        "seal_key_warning": expiry.words if (expiry := key_expiry(seal, utcnow())) is not None else None,
    }


@bp.route("/options")
@bp.response(200, schemas.OptionsSchema)
def get_options() -> dict[str, Any]:
    """What your archives hold: the vCard version of contacts and which kinds of data are included."""
    return _options_view(current_api_user())


@bp.route("/options", methods=["PUT"])
@bp.arguments(schemas.OptionsInSchema)
@bp.response(200, schemas.OptionsSchema)
def put_options(body: dict[str, Any]) -> dict[str, Any]:
    """Change the archive options from the next export on; no kind at all is a 422 `invalid_options`."""
    with get_db().session(write=True) as session:
        user = session.get(User, user_id())
        assert user is not None
        if "seal_key" in body and body["seal_key"] is None:
            body["seal_key"] = ""  # null stops encrypting, like ""
        try:
            save_archive_options(session, user, ArchiveOptions(**body), now=utcnow())
        except InvalidInput as exc:
            fail(422, "invalid_options", str(exc).splitlines()[0], exc.problems)
        return _options_view(user)


def _token_view(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "active": api_tokens.is_usable(token, utcnow()),
    }


@bp.route("/tokens")
@bp.response(200, schemas.TokenSchema(many=True))
def list_tokens() -> list[dict[str, Any]]:
    """Your API tokens, newest first (never their secrets)."""
    return [_token_view(t) for t in api_tokens.list_tokens(get_session(), user_id())]


@bp.route("/tokens", methods=["POST"])
@bp.arguments(schemas.TokenInSchema)
@bp.response(201, schemas.NewTokenSchema)
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    """Create a token; its secret is in this response only."""
    with get_db().session(write=True) as session:
        try:
            made = api_tokens.create_token(session, user_id(), body["name"], days=body["expires_in_days"], now=utcnow())
        except InvalidInput as exc:
            fail(422, "invalid_token_request", str(exc).splitlines()[0], exc.problems)
        return {**_token_view(made.token), "token": made.secret}


@bp.route("/tokens/<token_id>", methods=["DELETE"])
@bp.response(204)
def revoke_token(token_id: str) -> None:
    """Revoke a token: it stops working at once, including for the request that revokes itself after this one."""
    with get_db().session(write=True) as session:
        if api_tokens.revoke_token(session, user_id(), token_id, now=utcnow()) is None:
            fail(404, "not_found", "You have no API token with this id.")
