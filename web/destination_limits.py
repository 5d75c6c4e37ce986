"""How many confirmation links one mailbox may be sent, however its address is added or changed.

Why one shared limit: a user trial flooded a stranger's mailbox by adding and
removing the address through the API, and by changing a destination's address
back and forth on the page; only adding it on the page was limited. Every way
that mails a link (add or edit, page or API) now draws on one budget per
mailbox, LIFEBOAT_ACCOUNT_MAIL_ACCOUNT_LIMITS (as sign-up mail to one address).

Why two counts, and why only one of them refuses: the refusal (`limit_links`,
a 429 before anything is saved) counts per account *and* mailbox. Counted per
mailbox alone, any account could spend an address's budget and its real owner
could then not add it for an hour. The mailbox itself is protected by
`MailboxBudget`, counted across all accounts, which never refuses a save: when
it is spent the destination is saved waiting, no link is sent, and the user is
told when "send the link again" will work. So a mailbox still gets at most the
budget of links an hour whoever asks, and no account can stop another from
saving a destination. (The simplest sound variant: no new table, the same
limiter storage, Redis when configured, and the same setting for both.)

Why per mailbox, not per address: `victim@` and `victim+x@` reach the same
inbox, so the `+tag` is left out of the count's key. Why only requests that
mailed a link are counted (`counted`): an edit that keeps the address, or a
refused one, sends nothing; once an account's budget for a mailbox is spent,
its every such request is refused until the window passes.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import current_app, g, request
from flask_login import current_user
from limits import RateLimitItem, parse_many
from werkzeug.wrappers import Response

from web import limiter
from web.limits import TOO_MANY_LINKS, mail_account_limits

SCOPE = "destination-link"
BUDGET_SCOPE = "destination-link-mailbox"
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


def mailbox(address: str) -> str:
    """`Victim+x@example.org` is `victim@example.org`: one inbox, one budget."""
    local, at, domain = address.strip().lower()[:320].rpartition("@")
    return f"{local.split('+', 1)[0]}{at}{domain}" if at else domain


def _account() -> str:
    """Who asks: the API's user (bearer token or session), else the signed-in page's user."""
    api_user = g.get("api_user_id")
    if api_user is not None:
        return str(api_user)
    return str(current_user.get_id() or "") if current_user else ""


def mailbox_key() -> str:
    """The refusal's key: this account and the mailbox (see the module docstring for why not the mailbox alone)."""
    return f"account:{_account()}:mailbox:{mailbox(_to())}"


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


class MailboxBudget:
    """The links a mailbox may still get from Lifeboat, counted across all accounts (`MailBudget`).

    Counted in the limiter's storage under its own scope, so every web process
    shares it when that storage is Redis.
    """

    def __init__(self) -> None:
        self._items: list[RateLimitItem] = parse_many(mail_account_limits())
        self._prefix = str(current_app.config.get("RATELIMIT_KEY_PREFIX") or "lifeboat")

    def _key(self, to: str) -> tuple[str, ...]:
        return (self._prefix, BUDGET_SCOPE, mailbox(to))

    def take(self, to: str) -> bool:
        strategy = limiter.limiter
        if not all(strategy.test(item, *self._key(to)) for item in self._items):
            return False
        # A race between two requests can still make a hit fail: then no link goes, never one too many.
        return all([strategy.hit(item, *self._key(to)) for item in self._items])

    def wait(self, to: str) -> int:
        strategy = limiter.limiter
        now = time.time()
        waits = [
            math.ceil(stats.reset_time - now)
            for item in self._items
            if (stats := strategy.get_window_stats(item, *self._key(to))).remaining <= 0
        ]
        return max([1, *waits]) if waits else 0
