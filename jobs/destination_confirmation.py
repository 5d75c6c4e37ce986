"""An email destination receives archives only once the owner of its address agreed, by a mailed link.

Why: the whole archive (every contact, event and note, in plain text) goes to
that address. Someone with a stolen session, or a typo, must not be able to
send it anywhere by typing an address: a new address gets a signed, expiring
link and nothing else until the link is followed, and the account's own
address gets a notice that the destination was added (so a stolen session is
seen). The account's own address needs no link when the account confirmed it
at sign-up (or an operator made the account); it is also the default.

Why a signed token naming the destination and the address, not a row: the
link is only as good as the mailbox it was sent to, and the address in it must
still be the destination's when it is followed (an edited address voids the
links sent to the old one). Following it twice is harmless. The token also
names the destination's owner and when the row was made: SQLite gives a
removed destination's id to the next one, and a trial's link mailed for one
account then confirmed another account's destination with the same id and
address. No column is needed for that. (`created_at` is to the second: only the
same account re-adding the same address within that second could match, and
that address's owner agreed to exactly that.) The link opens a
page (`web.destination_confirm`) that needs no sign-in: holding the link
proves the mailbox, and the recipient usually has no account here.

Mail goes out after the transaction that started the wait commits, so a link
never names a destination that was rolled back.

Why a `MailBudget` is asked before each link (and why saving never depends on
it): a mailbox must not be flooded with links however many accounts name it,
but one account spending that budget must not stop another from saving the
address. So the destination is always saved; when the mailbox's budget is
spent, it waits with no link sent (`confirm_sent_at` stays empty) and its
owner is told when "send the link again" can work. The budget is the web's
(`web.destination_limits.MailboxBudget`, counted across accounts); the CLI,
run by the operator, sends without one (`UNLIMITED`).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass
from typing import Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from delivery.email import SmtpSettings
from jobs import account_mail
from jobs.destination_backends import Registry
from jobs.destination_consent import NO_MAIL_SERVER, is_account_address, receives, recipient
from store import Destination, User
from store.base import is_row_id

SALT = "lifeboat.destination-confirm.v1"
# Served by web.destination_confirm (tests/web/test_destination_confirmation.py follows a mailed link there).
PATH = "/destinations/confirm/"
RESEND_AFTER = dt.timedelta(minutes=1)  # a second "send the link again" within this is refused: no mail floods
_PENDING = "lifeboat.destination_confirmation.mail"
_LINKS = "lifeboat.destination_confirmation.links"  # links queued in this transaction (not notices)


class MailBudget(Protocol):
    """How many confirmation links a mailbox may still get now (see the module docstring)."""

    def take(self, to: str) -> bool:
        """Use one link of `to`'s mailbox's budget; False when it is spent (then no link may go)."""

    def wait(self, to: str) -> int:
        """Seconds until `to`'s mailbox may get a link again (0 when it may now)."""


class _Unlimited:
    def take(self, to: str) -> bool:
        return True

    def wait(self, to: str) -> int:
        return 0


UNLIMITED: MailBudget = _Unlimited()


@dataclass(frozen=True)
class Links:
    """What signing and mailing a link needs: the operator's settings, read when it is made."""

    secret_key: str
    base_url: str
    max_age: int  # seconds
    smtp: SmtpSettings

    @classmethod
    def of(cls, registry: Registry) -> Links:
        """From a `Registry`, which every caller of `add_destination` already built from the app's settings."""
        return cls(registry.external_id_key, registry.base_url, registry.confirm_link_max_age, registry.smtp)

    @property
    def hours(self) -> int:
        return max(1, self.max_age // 3600)

    def url(self, destination: Destination) -> str:
        named = {"d": destination.id, "t": recipient(destination), **_row_of(destination)}
        return f"{self.base_url.rstrip('/')}{PATH}{_serializer(self.secret_key).dumps(named)}"


def _row_of(destination: Destination) -> dict[str, object]:
    """What tells this destination row from a later one given its id: its owner and when it was made."""
    made = destination.created_at
    return {"u": destination.user_id, "c": f"{made.astimezone(dt.UTC):%Y%m%dT%H%M%S.%f}" if made else ""}


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def start(
    session: Session,
    links: Links,
    destination: Destination,
    user: User,
    *,
    now: dt.datetime,
    budget: MailBudget = UNLIMITED,
) -> None:
    """Decide whether a new (or re-addressed) email destination waits; if it does, mail its link after commit.

    The account's own confirmed address is confirmed at once. Any other address
    waits: the link goes to it (unless its mailbox's `budget` is spent: then
    none goes, and `confirm_sent_at` stays empty), and a notice to the account's
    own address says what was added and what to do if it was not them.
    """
    if destination.kind != "email" or is_account_address(destination, user):
        # The account's address: confirmed with the account (`receives`); a bucket needs no link.
        confirmed = destination.kind != "email" or user.email_confirmed_at is not None
        destination.confirmed_at, destination.confirm_sent_at = (now if confirmed else None), None
        return
    to = recipient(destination)
    sending = budget.take(to)
    destination.confirmed_at, destination.confirm_sent_at = None, (now if sending else None)
    session.flush()  # the id, for the token
    if sending:
        _queue_link(session, links, destination, user)
    page = f"{links.base_url.rstrip('/')}/settings/destinations"
    _after_commit(session, links.smtp, account_mail.destination_added(user.email, to, page))


def _queue_link(session: Session, links: Links, destination: Destination, user: User) -> None:
    mail = account_mail.destination_confirmation(
        recipient(destination), user.email, links.url(destination), links.hours
    )
    # Without a mail server the link only goes to the log (`account_mail`): the status must not say "emailed".
    destination.confirm_refused = None if links.smtp.enabled else NO_MAIL_SERVER
    _after_commit(session, links.smtp, mail, _refusal_kept(session, destination))
    session.info[_LINKS] = session.info.get(_LINKS, 0) + 1


def _refusal_kept(session: Session, destination: Destination) -> account_mail.OnOutcome:
    """What to do with the link's final outcome: a refusal is kept on the row (for its status), if the row
    still waits for this very link (same `confirm_sent_at`; a newer link or a confirmation leaves it be).

    Why after the fact: the link goes out after commit and a temporary failure is tried again for
    minutes (`account_mail`), long after the page or the API answered.
    """
    engine = session.get_bind().engine
    destination_id, sent_at = destination.id, destination.confirm_sent_at

    def kept(result: account_mail.Result) -> None:
        if result.outcome not in (account_mail.Outcome.REFUSED, account_mail.Outcome.FAILED):
            return
        said = result.reply or "the mail server did not take it"
        with engine.begin() as connection:
            connection.execute(
                update(Destination)
                .where(
                    Destination.id == destination_id,
                    Destination.confirm_sent_at == sent_at,
                    Destination.confirmed_at.is_(None),
                )
                .values(confirm_refused=said[:500])
            )

    return kept


class Resent(enum.Enum):
    SENT = "sent"
    TOO_SOON = "too soon"  # this destination's last link went out under RESEND_AFTER ago
    MAILBOX_BUSY = "mailbox busy"  # the mailbox got its budget of links (from any account): `MailBudget.wait`
    NOT_WAITING = "not waiting"


def resend(
    session: Session,
    links: Links,
    user: User,
    destination_id: int,
    *,
    now: dt.datetime,
    budget: MailBudget = UNLIMITED,
) -> tuple[Resent, Destination] | None:
    """Mail the link again (after commit); None if the destination is not `user`'s.

    Refused within RESEND_AFTER of the last one, so the button cannot flood a
    stranger's mailbox, and while the mailbox's `budget` is spent; a
    destination that already receives needs none.
    """
    row = session.get(Destination, destination_id) if is_row_id(destination_id) else None
    if row is None or row.user_id != user.id:
        return None
    if receives(row, user) or is_account_address(row, user):
        return Resent.NOT_WAITING, row
    if row.confirm_sent_at is not None and now - row.confirm_sent_at < RESEND_AFTER:
        return Resent.TOO_SOON, row
    if not budget.take(recipient(row)):
        return Resent.MAILBOX_BUSY, row
    row.confirm_sent_at = now
    _queue_link(session, links, row, user)
    return Resent.SENT, row


def too_soon_for(row: Destination, now: dt.datetime) -> int:
    """Seconds until `row`'s link may be sent again (RESEND_AFTER after the last); 0 if it may now."""
    if row.confirm_sent_at is None:
        return 0
    return max(0, math.ceil((row.confirm_sent_at + RESEND_AFTER - now).total_seconds()))


class Followed(enum.Enum):
    """What following a link found; each has its own words on the page."""

    WAITING = "waiting"  # the link is good and nothing is confirmed yet: the page asks
    CONFIRMED = "confirmed"
    ALREADY = "already confirmed"
    EXPIRED = "expired"
    INVALID = "not valid"
    GONE = "removed or changed"


@dataclass(frozen=True)
class Confirmation:
    outcome: Followed
    to: str = ""  # the address the link confirms (empty when the link is not one of ours)
    account: str = ""  # whose archives, so the recipient knows what they agree to
    owner_id: int | None = None  # an EXPIRED link: the account that added the address (it alone can resend)


@dataclass(frozen=True)
class Named:
    """What a good link names: the destination row (id, owner, when made) and the address it confirms."""

    destination_id: int
    to: str
    row: dict[str, object]  # `_row_of` when it was mailed; empty in a link mailed before it was part of the token


def read(secret_key: str, max_age: int, token: str) -> Named | Followed:
    """The destination and address a link names, or why it names nothing (EXPIRED, INVALID)."""
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        return Followed.EXPIRED
    except BadSignature:
        return Followed.INVALID
    if not isinstance(data, dict) or not isinstance(data.get("d"), int) or not isinstance(data.get("t"), str):
        return Followed.INVALID
    return Named(data["d"], data["t"], {k: data[k] for k in ("u", "c") if k in data})


def expired_owner(secret_key: str, token: str) -> int | None:
    """The account named in an expired (but genuine) link, so its signed-in owner can be told to resend it."""
    try:
        data = _serializer(secret_key).loads(token)  # the signature still counts; only the age is not checked
    except BadSignature:
        return None
    owner = data.get("u") if isinstance(data, dict) else None
    return owner if isinstance(owner, int) else None


def look(
    session: Session, secret_key: str, max_age: int, token: str, *, confirm: bool, now: dt.datetime
) -> Confirmation:
    """What the link opens (`confirm=False`: for the page's question), or confirm it (idempotent)."""
    named = read(secret_key, max_age, token)
    if named is Followed.EXPIRED:
        return Confirmation(named, owner_id=expired_owner(secret_key, token))
    if isinstance(named, Followed):
        return Confirmation(named)
    to = named.to
    row = session.get(Destination, named.destination_id) if is_row_id(named.destination_id) else None
    # Another row with the same id (removed, then another added) is not the one the link was mailed for;
    # a link from before the row was named in it could be such a one too: it asks for a new link.
    if row is None or row.kind != "email" or recipient(row) != to or _row_of(row) != named.row:
        return Confirmation(Followed.GONE, to)
    owner = session.get(User, row.user_id)
    account = owner.email if owner is not None else ""
    if row.confirmed_at is not None:
        return Confirmation(Followed.ALREADY, to, account)
    if confirm:
        row.confirmed_at = now
        return Confirmation(Followed.CONFIRMED, to, account)
    return Confirmation(Followed.WAITING, to, account)


def mails_pending(session: Session) -> bool:
    """Whether this transaction mails a confirmation link when it commits: what a per-mailbox limit counts.

    A notice to the account's own address alone (its link's mailbox budget was spent) is not a link.
    """
    return bool(session.info.get(_LINKS))


def _after_commit(
    session: Session,
    smtp: SmtpSettings,
    mail: account_mail.AccountMail,
    on_outcome: account_mail.OnOutcome | None = None,
) -> None:
    """Send `mail` once the session's transaction commits; never if it rolls back. `on_outcome` is told
    what finally became of it (`account_mail.send_with`)."""
    pending: list[tuple[account_mail.AccountMail, account_mail.OnOutcome | None]]
    pending = session.info.setdefault(_PENDING, [])
    if not pending:

        def sent(committed: Session) -> None:
            committed.info.pop(_LINKS, None)
            for each, told in committed.info.pop(_PENDING, []):
                account_mail.send_with(smtp, each, told)

        def dropped(rolled_back: Session) -> None:
            rolled_back.info.pop(_PENDING, None)
            rolled_back.info.pop(_LINKS, None)

        event.listen(session, "after_commit", sent, once=True)
        event.listen(session, "after_rollback", dropped, once=True)
    pending.append((mail, on_outcome))
