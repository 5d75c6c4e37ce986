"""/api/v1/support: the support console's JSON API, for staff tokens only.

Why a blueprint of its own: the user-facing API acts for the token's owner on
their own data; this one acts on other users' accounts, so it needs another
rule (staff role, bearer token only: no browser session, whose second factor
the API cannot see) and it must never share a route with user content. Errors
are the same JSON as the user API (`web.api.blueprint`).
"""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from store import User, get_session
from store.staff import STAFF_ROLES
from web.api.blueprint import bearer_user_id, check_body, fail, http_error, unexpected_error

support_bp = Blueprint(
    "support_api",
    __name__,
    url_prefix="/api/v1/support",
    description="For support staff (staff API tokens only): find users, see what happened, act — every action audited.",
)


def staff_user() -> User:
    """The staff member this request acts as (set by `authenticate_staff`)."""
    user = get_session().get(User, int(g.staff_user_id))
    assert user is not None  # checked by `authenticate_staff`
    return user


@support_bp.before_request
def authenticate_staff() -> None:
    header = request.headers.get("Authorization")
    if header is None:
        fail(401, "missing_token", "Authenticate with `Authorization: Bearer <staff token>`.")
    found = bearer_user_id(header)
    user = get_session().get(User, found)
    if user is None or not user.is_active:
        fail(401, "invalid_token", "The account this token belongs to is closed.")
    if user.role not in STAFF_ROLES:
        fail(403, "staff_only", "This part of the API is for support staff; use /api/v1 for your own data.")
    g.staff_user_id = found
    check_body()


@support_bp.errorhandler(HTTPException)
def support_http_error(exc: HTTPException) -> Response:
    return http_error(exc)


@support_bp.errorhandler(Exception)
def support_unexpected_error(exc: Exception) -> Response:
    return unexpected_error(exc)
