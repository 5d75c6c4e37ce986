"""The page a new email destination's link opens: "yes, send me these archives", without signing in.

Why no sign-in: the link was mailed to the address, so holding it proves the
mailbox, and whoever reads that mailbox usually has no account here. Why a
button rather than confirming on opening: mail scanners open links before
people do, and agreeing to receive someone's contacts and notes should be a
person's choice. Both are harmless twice: a confirmed address stays so.
Why `Cache-Control: no-store` and no referrer: the token is in the address.

Why its own answer to an expired form (`expired_form`, not the site-wide
"This form expired" page): that page offers "Sign in", and the recipient has
no account here. A form that expired while its link is still good asks again;
an expired link tells the recipient to ask whoever added the address for a new
one, and tells that account's owner (signed in) to press “Send the link again”.
"""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, render_template
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from jobs.destination_confirmation import Confirmation, Followed, look
from store import get_db
from store.base import utcnow

bp = Blueprint("destination_confirm", __name__)

# What each outcome says, and what to do next. A link that opens nothing tells the reader who can mend it.
WORDS = {
    Followed.CONFIRMED: ("Confirmed", "Lifeboat will email {to} copies of the archives of {account} from now on."),
    Followed.ALREADY: ("Already confirmed", "{to} already receives the archives of {account}; nothing more to do."),
    Followed.EXPIRED: (
        "This link has expired",
        "Nothing was changed. Ask the person who added your address to send you a new link (they press “Send the "
        "link again” on their Destinations page in Lifeboat), then follow the new link.",
    ),
    Followed.INVALID: (
        "This link is not valid",
        "Nothing was changed. Check that the whole link was copied from the email, or ask the person who added "
        "your address to send it again.",
    ),
    Followed.GONE: (
        "This address is no longer a destination",
        "Nothing was changed: the destination was removed, or its address was changed since this link was sent. "
        "Nothing will be sent to you unless someone adds your address again.",
    ),
}


class ConfirmForm(FlaskForm):
    """No fields: the button's form exists for its CSRF token."""


# The account that added the address, signed in, can mend an expired link itself.
OWNER_EXPIRED = (
    "Nothing was changed. Press “Send the link again” next to this address on your Destinations page "
    "(Settings → Destinations); a new link goes to the address, to be followed there."
)


def _is_owner(found: Confirmation) -> bool:
    return found.owner_id is not None and current_user.is_authenticated and current_user.get_id() == str(found.owner_id)


def _answer(found: Confirmation, status: int = 200, *, form_expired: bool = False) -> Response:
    if found.outcome is Followed.WAITING:
        page = render_template("destination_confirm.html", found=found, form=ConfirmForm(), form_expired=form_expired)
    else:
        title, words = WORDS[found.outcome]
        if found.outcome is Followed.EXPIRED and _is_owner(found):
            words = OWNER_EXPIRED
        page = render_template("message.html", title=title, message=words.format(to=found.to, account=found.account))
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _status(found: Confirmation) -> int:
    return {Followed.EXPIRED: 410, Followed.GONE: 410, Followed.INVALID: 404}.get(found.outcome, 200)


@bp.route("/destinations/confirm/<token>")
def ask(token: str) -> Response:
    """Say whose archives would come, to which address, and offer the button; changes nothing."""
    config = current_app.config
    with get_db().session() as session:
        found = look(session, config["SECRET_KEY"], config["CONFIRM_LINK_MAX_AGE"], token, confirm=False, now=utcnow())
    return _answer(found, _status(found))


@bp.route("/destinations/confirm/<token>", methods=["POST"])
def confirm(token: str) -> Response:
    """Confirm the address (again is harmless); a form that expired just asks once more."""
    config = current_app.config
    if not ConfirmForm().validate_on_submit():
        return expired_form(token)
    with get_db().session(write=True) as session:
        found = look(session, config["SECRET_KEY"], config["CONFIRM_LINK_MAX_AGE"], token, confirm=True, now=utcnow())
    return _answer(found, _status(found))


def expired_form(token: str) -> Response:
    """The button's form expired (or lost its CSRF token): ask again while the link is good, else say it expired.

    Called by `web.error_pages` for a CSRF failure on this page (see the module docstring).
    """
    config = current_app.config
    with get_db().session() as session:
        found = look(session, config["SECRET_KEY"], config["CONFIRM_LINK_MAX_AGE"], token, confirm=False, now=utcnow())
    if found.outcome is Followed.WAITING:
        return _answer(found, 400, form_expired=True)
    return _answer(found, _status(found))
