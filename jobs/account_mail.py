"""The emails of an account's life: confirm your address, reset your password, "you already have one".

Also the two a new email destination sends: the link to its address, and the
notice to the account's own address (`jobs.destination_confirmation`).

Why sent in the background: the web answers sign-up and reset requests the
same way whether or not the address has an account, and that includes how
long the answer takes. An SMTP conversation takes a noticeable while, and it
happens for some addresses only (no reset mail to an address without an
account), so the request hands the message to a small pool and returns at
once. Why through `EmailDelivery.send_notice`: it is the one place that
builds a safe message (headers checked after flattening) and talks to the
operator's mail server (LIFEBOAT_SMTP_*), as the failure notice does.

Why the page still learns what happened (user trial 7: "we sent a message"
while the server had answered 550): `send` returns a future of the first try's
`Outcome`, and the page waits for it a short while (`outcome`, WAIT_SECONDS).
A refused address (5xx at RCPT) is said as such; a temporary failure (4xx,
no connection, no answer) is tried again in the background after
RETRY_DELAYS and the page says "delayed", not "sent"; a refusal that is the
operator's to fix (login, sender, TLS) is said without detail and logged.
The retries live in this process only (a restart drops them): the links they
carry are secrets that are better not written to the database, and the
person can always ask again. The web keeps its answers the same whether or
not an address has an account: sign-up mails the same address in both cases,
and a reset request asks the mail server about the address (`probe`)
whether or not it then sends anything.

Without a mail server (the embedded default before LIFEBOAT_SMTP_HOST is
set) the link is logged at WARNING for the operator, who on that kind of
install is usually the only user: otherwise nobody could ever confirm.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from delivery.email import EmailDelivery, SmtpSettings
from delivery.email.errors import RecipientRefusedError
from errors import DeliveryError
from jobs.destination_backends import smtp_settings

log = logging.getLogger("lifeboat.account_mail")
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="account-mail")
# Seconds before each new try after a temporary failure (4xx, no connection): about ten minutes in all.
RETRY_DELAYS: tuple[float, ...] = (30.0, 120.0, 480.0)
# How long a page waits for the first try before it says the message is delayed (it keeps going).
WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class AccountMail:
    """One message to one address: what it says and the link it carries."""

    to: str
    subject: str
    text: str
    link: str


def confirmation(to: str, link: str, hours: int) -> AccountMail:
    text = (
        "Hello,\n\n"
        "Someone (we hope you) created a Lifeboat account with this address.\n"
        f"To confirm it, open this link within {hours} hours:\n\n{link}\n\n"
        "If it was not you, ignore this message: the account stays unconfirmed and cannot export.\n"
    )
    return AccountMail(to, "Confirm your Lifeboat account", text, link)


def already_registered(to: str, link: str) -> AccountMail:
    """Sent instead of a confirmation when the address already has an account (the page says the same)."""
    text = (
        "Hello,\n\n"
        "Someone (we hope you) tried to create a Lifeboat account with this address, "
        "but it already has one. Nothing was changed.\n\n"
        f"If you forgot your password, you can choose a new one here:\n\n{link}\n\n"
        "If it was not you, ignore this message.\n"
    )
    return AccountMail(to, "You already have a Lifeboat account", text, link)


def password_reset(to: str, link: str, minutes: int) -> AccountMail:
    text = (
        "Hello,\n\n"
        "Someone (we hope you) asked to choose a new password for your Lifeboat account.\n"
        f"Open this link within {minutes} minutes; it works once:\n\n{link}\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n"
    )
    return AccountMail(to, "Choose a new Lifeboat password", text, link)


def password_changed(to: str, how: str, when: dt.datetime, page: str) -> AccountMail:
    """To the account's address after its password changed: someone who took over a session or the mailbox is seen.

    `how` says where ("in your settings", "with a reset link"); `page` is where a new one is chosen.
    """
    text = (
        "Hello,\n\n"
        f"The password of your Lifeboat account was changed {how} on {when:%Y-%m-%d %H:%M} UTC.\n"
        "Every other session was signed out; API tokens keep working.\n\n"
        "If it was not you, choose a new password now and revoke the API tokens you did not make "
        f"(Settings, Personal API tokens):\n\n{page}\n"
    )
    return AccountMail(to, "Your Lifeboat password was changed", text, page)


def destination_confirmation(to: str, account: str, link: str, hours: int) -> AccountMail:
    """To a new email destination's address: nothing is sent there until this link is followed."""
    text = (
        "Hello,\n\n"
        f"The Lifeboat account {account} asked to email copies of its archives to this address.\n"
        "Each archive holds that account's contacts, calendars and notes.\n\n"
        f"If you expect them, confirm within {hours} hours by opening this link:\n\n{link}\n\n"
        "If you do not know why you got this, ignore this message: nothing will be sent to you.\n"
    )
    return AccountMail(to, "Confirm that you want to receive Lifeboat archives", text, link)


def destination_added(to: str, address: str, page: str) -> AccountMail:
    """To the account's own address when another address was added: a stolen session or a typo is seen here."""
    text = (
        "Hello,\n\n"
        f"Someone (we hope you) added {address} as a destination for your Lifeboat archives.\n"
        "We emailed that address a link; nothing is sent there until someone there follows it.\n\n"
        f"If it was not you, or the address is wrong, remove it now and change your password:\n\n{page}\n"
    )
    return AccountMail(to, "A new address will receive your Lifeboat archives", text, page)


class Outcome(enum.Enum):
    """What became of a message (its first try, or all of them for `on_outcome`)."""

    SENT = "sent"  # the mail server accepted it
    REFUSED = "refused"  # the mail server refused the address (5xx at RCPT): check the address
    DELAYED = "delayed"  # a temporary failure, or no answer yet: tried again in the background
    FAILED = "failed"  # refused for a reason the operator must fix (login, sender, TLS, content)
    LOGGED = "logged"  # no mail server is set: the link went to the log (see `_send`)


@dataclass(frozen=True)
class Result:
    """An `Outcome` and, for REFUSED, the mail server's answer (e.g. "550 5.1.1 User unknown") to show."""

    outcome: Outcome
    reply: str = ""


OnOutcome = Callable[[Result], None]


def can_send(config: Mapping[str, Any]) -> bool:
    """Whether a message would reach anyone: False when no mail server is set (LIFEBOAT_SMTP_HOST).

    Why asked before sending: a page that promises "a link is on its way" must
    know it is; without a mail server the link is only logged (see `_send`), and
    a page that can show it (an admin's) shows it instead.
    """
    return smtp_settings(dict(config)).enabled


def send(config: Mapping[str, Any], mail: AccountMail, on_outcome: OnOutcome | None = None) -> Future[Result]:
    """Send `mail` in the background; the future gives the first try's result and never raises.

    `on_outcome` is called once with the final result, after any retries (from a background thread).
    """
    return send_with(smtp_settings(dict(config)), mail, on_outcome)


def send_with(settings: SmtpSettings, mail: AccountMail, on_outcome: OnOutcome | None = None) -> Future[Result]:
    """As `send`, with the SMTP settings already read (`jobs.destination_confirmation` keeps them)."""
    return _pool.submit(_send, settings, mail, 0, on_outcome)


def probe(config: Mapping[str, Any], to: str) -> Future[Result]:
    """Ask the mail server whether it takes mail for `to` (MAIL, RCPT, RSET: nothing is sent); never raises.

    For a page that must answer alike whether or not it sends anything (a reset
    request for an address without an account).
    """
    settings = smtp_settings(dict(config))
    return _pool.submit(_probe, settings, to)


def outcome(future: Future[Result], timeout: float | None = None) -> Result:
    """The first try's result, or DELAYED if it takes longer than `timeout` (WAIT_SECONDS); it goes on."""
    try:
        return future.result(timeout=WAIT_SECONDS if timeout is None else timeout)
    except FutureTimeout:
        return Result(Outcome.DELAYED)


def _send(settings: SmtpSettings, mail: AccountMail, attempt: int, on_outcome: OnOutcome | None) -> Result:
    if not settings.enabled:
        # The operator's way in when no mail server is set; never the address's owner.
        log.warning("email is not configured (LIFEBOAT_SMTP_HOST); %r for %s: %s", mail.subject, mail.to, mail.link)
        return _final(Result(Outcome.LOGGED), on_outcome)
    try:
        EmailDelivery(settings, mail.to).send_notice(mail.subject, mail.text)
    except Exception as exc:
        result = _result_of(exc)
        if result.outcome is Outcome.DELAYED and attempt < len(RETRY_DELAYS):
            delay = RETRY_DELAYS[attempt]
            log.warning("could not send %r to %s: %s; trying again in %g s", mail.subject, mail.to, exc, delay)
            timer = threading.Timer(delay, _retry, (settings, mail, attempt + 1, on_outcome))
            timer.daemon = True  # a retry must not keep a stopping process alive
            timer.start()
            return result
        log.warning("could not send %r to %s: %s", mail.subject, mail.to, exc)
        return _final(result, on_outcome)
    if attempt:
        log.info("sent %r to %s on try %d", mail.subject, mail.to, attempt + 1)
    return _final(Result(Outcome.SENT), on_outcome)


def _retry(settings: SmtpSettings, mail: AccountMail, attempt: int, on_outcome: OnOutcome | None) -> None:
    try:
        _pool.submit(_send, settings, mail, attempt, on_outcome)
    except RuntimeError:  # the pool was shut down: the process is stopping
        log.warning("gave up sending %r to %s: the process is stopping", mail.subject, mail.to)


def _probe(settings: SmtpSettings, to: str) -> Result:
    if not settings.enabled:
        return Result(Outcome.LOGGED)
    try:
        EmailDelivery(settings, to).test_connection()
    except Exception as exc:
        log.warning("the mail server would not take mail for %s: %s", to, exc)
        return _result_of(exc)
    return Result(Outcome.SENT)


def _result_of(exc: Exception) -> Result:
    if isinstance(exc, RecipientRefusedError) and exc.permanent:
        return Result(Outcome.REFUSED, exc.reply)
    if isinstance(exc, DeliveryError) and exc.permanent:
        return Result(Outcome.FAILED)
    if isinstance(exc, DeliveryError):
        return Result(Outcome.DELAYED)
    return Result(Outcome.FAILED)  # a bug, not the network: trying again would not help


def _final(result: Result, on_outcome: OnOutcome | None) -> Result:
    if on_outcome is not None:
        try:
            on_outcome(result)
        except Exception:
            log.exception("the outcome hook for account mail failed")
    return result
