"""Friendly error pages with a way back, and JSON errors for API clients.

Why: Werkzeug's default pages ("405 Method Not Allowed", "The CSRF session
token is missing") tell a user neither what happened nor where to go next.
Every page here says what happened in words, that nothing was done when
that is true, and links back to the dashboard (or sign-in) and to the page
the user came from. Requests under /api/ and requests that prefer JSON get
`{"code", "message"}` with the same status instead of HTML, so a script never
has to parse a page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from web.redirects import safe_next

# status: (code for JSON, page title, what it means and what to do)
PAGES: dict[int, tuple[str, str, str]] = {
    400: (
        "bad_request",
        "That request could not be read",
        "Something in the request was not as expected. Go back and try again.",
    ),
    403: ("forbidden", "Not allowed", "You do not have access to this. If you followed a link, ask for a new one."),
    404: (
        "not_found",
        "Page not found",
        "There is nothing at this address. It may have been deleted, or the link may be incomplete.",
    ),
    405: (
        "method_not_allowed",
        "This address is for a button",
        "This page cannot be opened directly: it belongs to a button or form. Go back and use the button.",
    ),
    410: (
        "gone",
        "This link has expired",
        "The link is no longer valid. Ask for a new one, or download from your dashboard.",
    ),
    413: (
        "too_large",
        "That was too much to send",
        "The request was larger than Lifeboat accepts, so it was not read and nothing was changed. "
        "Send less at a time.",
    ),
    429: ("too_many_requests", "Too many requests", "Please wait a minute and try again."),
    500: (
        "internal_error",
        "Something went wrong on our side",
        "We could not finish this. Nothing you did caused it; please try again in a few minutes.",
    ),
}
EXPIRED_FORM = (
    "form_expired",
    "This form expired",
    "For your safety, a form stops working after a while, or after you sign out or in elsewhere. "
    "Nothing was changed. Reload the page and try again.",
)


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, expired_form)
    app.register_error_handler(HTTPException, http_error)
    app.before_request(replace_nul_in_query)


def replace_nul_in_query() -> None:
    """NUL in a query string becomes U+FFFD before any view reads it: Lifeboat's rule for all free text.

    Why here, once: PostgreSQL refuses NUL in text, so every search box and
    filter would otherwise answer `?q=a%00b` with a 500. Replaced, it is an
    ordinary character that matches nothing.
    """
    if "%00" in request.query_string.decode("latin-1"):
        pairs = [(key.replace("\x00", "\ufffd"), value.replace("\x00", "\ufffd"))
                 for key, value in request.args.items(multi=True)]  # fmt: skip
        request.args = ImmutableMultiDict(pairs)  # werkzeug caches the parsed args: replaceable


def wants_json() -> bool:
    """API paths always; elsewhere when the client prefers JSON to HTML (the dashboard's polling)."""
    if request.path.startswith("/api/"):
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json" and (
        accept["application/json"] > accept["text/html"]
    )


def http_error(error: HTTPException) -> Response | HTTPException:
    code = error.code or 500
    slug, title, default = PAGES.get(code, (f"http_{code}", error.name, ""))
    # A description the code chose (abort(404, "…")) says more than the generic words.
    custom = error.description if error.description != type(error).description else None
    message = custom or default or (error.description or "")
    response = render(code, slug, title, message)
    # Keep what the exception carries (Allow on 405, Retry-After on 429).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers.setdefault(name, value)
    return response


def expired_form(error: CSRFError) -> Response:
    """A form posted without a valid CSRF token: almost always a page left open too long."""
    if request.endpoint == "auth.login" and not wants_json():
        from web.auth import expired_sign_in

        page, status = expired_sign_in()
        return Response(page, status=status, mimetype="text/html")
    if request.endpoint == "destination_confirm.confirm" and not wants_json():
        # Its reader usually has no account: "Sign in" would be no way forward (`web.destination_confirm`).
        from web.destination_confirm import expired_form as expired_confirmation

        return expired_confirmation(str((request.view_args or {}).get("token", "")))
    slug, title, message = EXPIRED_FORM
    return render(400, slug, title, message)


def render(code: int, slug: str, title: str, message: str) -> Response:
    response: Response
    if wants_json():
        response = jsonify(code=slug, message=message)
    else:
        response = Response(
            render_template("error.html", status=code, title=title, message=message, back=came_from()),
            mimetype="text/html",
        )
    response.status_code = code
    return response


def came_from() -> str | None:
    """The page the user came from on this site (its path), to offer as "Go back"; else None."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != request.host or parts.path == request.path:
        return None
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
