"""The /api/v1 blueprint: who is asking (bearer token, or the session with its CSRF token) and JSON errors.

Why bearer tokens are exempt from Flask-WTF's CSRF check: a browser never
attaches an `Authorization` header on its own, so a token is not an ambient
credential a forged cross-site request could borrow. The session cookie is
one, so a request that relies on it must carry the page's CSRF token in
`X-CSRFToken` (any method): without one the cookie is ignored and the request
is unauthenticated.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from apispec import APISpec
from flask import abort, current_app, g, jsonify, request
from flask_login import current_user
from flask_smorest import Blueprint
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import ValidationError

from jobs import api_tokens
from store import User, get_db, get_session
from store.base import utcnow
from store.staff import STAFF_ROLES
from web.api import plain_words
from web.error_pages import PAGES

log = logging.getLogger("lifeboat.api")

bp = Blueprint(
    "api", __name__, url_prefix="/api/v1", description="Lifeboat's JSON API: everything a signed-in user can do."
)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="lifeboat"'}


def error_response(
    status: int,
    code: str,
    message: str,
    problems: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if problems:
        body["problems"] = [{"field": where, "message": what} for where, what in problems]
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def fail(status: int, code: str, message: str, problems: list[tuple[str, str]] | None = None) -> NoReturn:
    """Stop the request with a JSON error (401s also say how to authenticate)."""
    abort(error_response(status, code, message, problems, _CHALLENGE if status == 401 else None))


def user_id() -> int:
    """The id of the user this API request acts for (set by `authenticate`)."""
    return int(g.api_user_id)


def current_api_user() -> User:
    user = get_session().get(User, user_id())
    assert user is not None  # checked by `authenticate`
    return user


def _where_tokens_come_from() -> str:
    """Where a new token comes from: users make their own in Settings; staff get theirs from an admin."""
    if request.path.startswith("/api/v1/support"):
        return "ask an admin for a new staff token (/admin/staff/tokens)."
    return "create a new one in Settings."


def bearer_user_id(header: str) -> int:
    """The user an `Authorization: Bearer` header names, or a 401 saying what is wrong with it."""
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        fail(401, "invalid_token", "Send the token as `Authorization: Bearer lb_…`.")
    found = api_tokens.authenticate(get_db(), secret.strip(), now=utcnow())
    if found is None:
        fail(401, "invalid_token", "This API token is unknown, revoked or expired: " + _where_tokens_come_from())
    return found


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization")
    if header is not None:
        found = bearer_user_id(header)
    elif current_user.is_authenticated:
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError:
            fail(
                401,
                "csrf_token_required",
                "Signed in through the browser, send the page's CSRF token in X-CSRFToken, or use an API token.",
            )
        found = int(current_user.get_id())
    else:
        fail(401, "missing_token", "Authenticate with `Authorization: Bearer <token>`; create a token in Settings.")
    user = get_session().get(User, found)
    if user is None or not user.is_active:
        fail(401, "invalid_token", "The account this token belongs to is closed.")
    if user.role in STAFF_ROLES:  # staff hold no data and never act as a user: /api/v1/support is theirs
        fail(403, "staff_forbidden", "Staff accounts cannot use the user API; use /api/v1/support.")
    g.api_user_id = found
    check_body()


NOT_JSON = "Send a JSON object with Content-Type: application/json."


def check_body() -> None:
    """One rule for every endpoint's body (user and staff API): JSON or none; none only where it is optional.

    Why: webargs reads only a JSON body and takes anything else as no body at all.
    A form or text/plain `expires_in_days=1` sent to POST …/links made the longest
    link, 7 days, and answered 201 (user trial); an empty body to PUT /schedule
    (every field optional) would mean "change nothing and switch on". Whether a
    body is required is what the view declares (`@bp.arguments(…, required=…)`),
    which is also what the OpenAPI document says, so no list has to be kept.
    """
    has_body = bool(request.content_length) or (
        request.content_length is None and bool(request.get_data(cache=True))  # chunked: no length given
    )
    if has_body and not request.is_json:
        fail(415, "unsupported_media_type", NOT_JSON)
    if _body_required():
        if not request.is_json:
            fail(415, "unsupported_media_type", NOT_JSON)
        if not has_body:
            fail(422, "invalid_input", "The request needs a JSON object body.", [("body", "Missing.")])


def _body_required() -> bool:
    """The view declares a required JSON body (flask-smorest keeps its `@arguments` on the view)."""
    view = current_app.view_functions.get(request.endpoint or "")
    parameters = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(p.get("in") == "json" and p.get("required", True) for p in parameters)


def document_json_bodies(spec: APISpec) -> None:
    """Say in the document what `check_body` answers: 415 to a body that is not JSON, wherever one is taken."""
    spec.components.response(
        "UNSUPPORTED_MEDIA_TYPE",
        {
            "description": "The body is not JSON. " + NOT_JSON,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    )
    # apispec keeps no public way to edit a registered path; `_paths` is the dict it writes out.
    for operations in spec._paths.values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                responses = operation.setdefault("responses", {})
                responses.setdefault("415", {"$ref": "#/components/responses/UNSUPPORTED_MEDIA_TYPE"})


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    if exc.response is not None:  # from `fail`: already the JSON the client gets
        return exc.response  # type: ignore[return-value]
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    problems = _problems(data.get("messages")) if isinstance(data, dict) else []
    message = data.get("message") if isinstance(data, dict) and data.get("message") else None
    if status in (400, 422) and problems:  # 400: e.g. a body that is not JSON (werkzeug's words are for browsers)
        message = _one_sentence(problems)
    if status == 413 and not message and exc.description == type(exc).description:
        message = PAGES[413][2]  # werkzeug's words for a body over the limit are for browsers
    headers = _CHALLENGE if status == 401 else {}
    if status == 405 and exc.get_headers():
        headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
    return error_response(status, CODES.get(status, "error"), message or exc.description or exc.name, problems, headers)


@bp.errorhandler(Exception)
def unexpected_error(exc: Exception) -> Response:
    log.exception("API request failed", extra={"path": request.path})
    return error_response(500, "internal_error", "Something went wrong on our side; support can see the details.")


def routing_error() -> Response | None:
    """Unknown paths and methods under /api/: JSON, not the site's HTML error pages.

    Why a before_request hook of the app: such a request matches no blueprint,
    so blueprint error handlers never see it, and the app's handlers belong to
    the pages. Flask runs app hooks before it raises the routing error.
    """
    exc = request.routing_exception
    if not isinstance(exc, HTTPException) or (exc.code or 0) < 400 or not request.path.startswith("/api/"):
        return None
    status = exc.code or 404
    headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
    message = "There is no such API endpoint; see /api/v1/openapi.json." if status == 404 else exc.description
    return error_response(status, CODES.get(status, "error"), message or exc.name, None, headers)


def _one_sentence(problems: list[tuple[str, str]]) -> str:
    """`to: is required; kind: must be one of: s3, email.`: each field and what it must be."""
    parts = [what if what.startswith("The body") else f"{where}: {what}" for where, what in problems]
    return "; ".join(part.rstrip(".") for part in parts) + "."


def _problems(messages: Any, where: str = "", location: str = "json") -> list[tuple[str, str]]:
    """Flatten webargs' nested `{"json": {"field": ["msg"]}}` into (field, message) pairs, in plain words.

    marshmallow's and webargs' own messages become `plain_words`' (one mapping
    for every schema); the project's own messages pass through unchanged.
    """
    if isinstance(messages, dict):
        found: list[tuple[str, str]] = []
        for key, value in messages.items():
            if where == "" and key in _LOCATIONS:
                found += _problems(value, "", str(key))
                continue
            inner = str(key) if where == "" else f"{where}.{key}"
            found += _problems(value, inner, location)
        return found
    if isinstance(messages, list):
        if any(isinstance(m, str) and plain_words.ours(m) for m in messages):  # ours already say what to do
            messages = [m for m in messages if not isinstance(m, str) or plain_words.ours(m)]
        return [item for message in messages for item in _problems(message, where, location)]
    if messages is None:  # an error raised with a message only (`abort(404, "…")`): no field to blame
        return []
    text = str(messages)
    if where in ("", "_schema") and text == "Invalid input type.":  # the body is a list, a string, a number…
        return [("body", plain_words.not_an_object(request.get_json(silent=True)))]
    if text == "Invalid JSON body.":
        return [("body", plain_words.NOT_JSON)]
    if where.endswith("_schema"):
        where = where.removesuffix("_schema").rstrip(".") or "body"
    return [(where or "request", plain_words.plain(text, location))]


_LOCATIONS = frozenset({"json", "query", "querystring", "form", "path", "headers", "cookies", "files"})
