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

Without a mail server (the embedded default before LIFEBOAT_SMTP_HOST is
set) the link is logged at WARNING for the operator, who on that kind of
install is usually the only user: otherwise nobody could ever confirm.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from delivery.email import EmailDelivery, SmtpSettings
from jobs.destination_backends import smtp_settings

log = logging.getLogger("lifeboat.account_mail")
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="account-mail")


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


def can_send(config: Mapping[str, Any]) -> bool:
    """Whether a message would reach anyone: False when no mail server is set (LIFEBOAT_SMTP_HOST).

    Why asked before sending: a page that promises "a link is on its way" must
    know it is; without a mail server the link is only logged (see `_send`), and
    a page that can show it (an admin's) shows it instead.
    """
    return smtp_settings(dict(config)).enabled


def send(config: Mapping[str, Any], mail: AccountMail) -> Future[None]:
    """Send `mail` in the background; the future is for tests and never raises to the web."""
    settings = smtp_settings(dict(config))
    return _pool.submit(_send, settings, mail)


def send_with(settings: SmtpSettings, mail: AccountMail) -> Future[None]:
    """As `send`, with the SMTP settings already read (`jobs.destination_confirmation` keeps them)."""
    return _pool.submit(_send, settings, mail)


def _send(settings: SmtpSettings, mail: AccountMail) -> None:
    if not settings.enabled:
        # The operator's way in when no mail server is set; never the address's owner.
        log.warning("email is not configured (LIFEBOAT_SMTP_HOST); %r for %s: %s", mail.subject, mail.to, mail.link)
        return
    try:
        EmailDelivery(settings, mail.to).send_notice(mail.subject, mail.text)
    except Exception as exc:
        log.warning("could not send %r to %s: %s", mail.subject, mail.to, exc)
