"""How many confirmation links one mailbox may be sent, however its address is added or changed.

Why one shared limit: a user trial flooded a stranger's mailbox by adding and
removing the address through the API, and by changing a destination's address
back and forth on the page; only adding it on the page was limited. Every way
that mails a link (add or edit, page or API) now draws on one budget per
mailbox, LIFEBOAT_ACCOUNT_MAIL_ACCOUNT_LIMITS (as sign-up mail to one address).

Why per mailbox, not per address: `victim@` and `victim+x@` reach the same
inbox, so the `+tag` is left out of the count's key. Why only requests that
mailed a link are counted (`counted`): an edit that keeps the address, or a
refused one, sends nothing; once the budget is spent, every such request is
refused until the window passes.
"""

from __future__ import annotations

from typing import Any

from flask import g, request
from werkzeug.wrappers import Response

from web import limiter
from web.limits import TOO_MANY_LINKS, mail_account_limits

SCOPE = "destination-link"
_COUNTED = "lifeboat_destination_link_mailed"


def _to() -> str:
    """The address a request would mail a link to: JSON `to`, a form's `to`, or an edit form's `edit-<id>-to`."""
    value: Any = None
    if request.is_json:
        body = request.get_json(silent=True)
        value = body.get("to") if isinstance(body, dict) else None
    else:
        value = next((v for k, v in request.form.items() if k == "to" or k.endswith("-to")), None)
    return value.strip().lower()[:320] if isinstance(value, str) else ""


def mailbox_key() -> str:
    """`victim+x@example.org` counts as `victim@example.org`: one inbox, one budget."""
    local, at, domain = _to().rpartition("@")
    return f"mailbox:{local.split('+', 1)[0]}{at}{domain}" if at else f"mailbox:{domain}"


def _no_recipient() -> bool:
    """No address (the account's own, on the page) or not an email destination: no link to count."""
    return not _to()


def _mailed(_response: Response) -> bool:
    return bool(g.get(_COUNTED))


def counted() -> None:
    """Call when this request mailed (after commit) a confirmation link: it counts against the mailbox's budget."""
    setattr(g, _COUNTED, True)


# One budget shared by every view so decorated (the scope): see the module docstring.
limit_links = limiter.shared_limit(
    mail_account_limits,
    scope=SCOPE,
    key_func=mailbox_key,
    exempt_when=_no_recipient,
    deduct_when=_mailed,
    error_message=TOO_MANY_LINKS,
)
