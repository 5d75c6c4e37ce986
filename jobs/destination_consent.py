"""Whether an email destination may receive archives yet, and why not, in words.

Why apart from `jobs.destination_confirmation` (which mails and follows the
links): the delivery side (`jobs.destination_backends`) asks these questions
before every export and must not import the mail code that imports it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import Destination, User

# `confirm_refused` of a link that was made but could not be mailed: this Lifeboat has no mail server.
# Why in that column: the link exists (its operator can hand it over, `destination add-email` prints it)
# and its sending is dated like any other; only the mailing is missing, as with a refused one.
NO_MAIL_SERVER = "no mail server (LIFEBOAT_SMTP_HOST)"


def recipient(destination: Destination) -> str:
    """The address an email destination names ("" for the account's own address, the default)."""
    return str(destination.settings.get("to") or "")


def is_account_address(destination: Destination, user: User) -> bool:
    to = recipient(destination)
    return not to or to.strip().lower() == user.email.strip().lower()


def receives(destination: Destination, user: User) -> bool:
    """Whether archives may be sent to `destination` now.

    The account's own address counts once the account confirmed it, even if it
    was added before then (nothing could be exported before then anyway).
    """
    if destination.kind != "email" or destination.confirmed_at is not None:
        return True
    return is_account_address(destination, user) and user.email_confirmed_at is not None


def waiting_reason(destination: Destination, user: User) -> str | None:
    """Why nothing is sent to `destination`, in words for its status and the run's history; None if it receives."""
    if receives(destination, user):
        return None
    if is_account_address(destination, user):
        return (
            "Waiting until you confirm your account's address (follow the link we emailed you); "
            "nothing is sent here until then."
        )
    to = recipient(destination)
    sent = destination.confirm_sent_at
    if sent is not None and destination.confirm_refused == NO_MAIL_SERVER:
        return (
            f"Waiting for confirmation: no link was emailed to {to}, because this Lifeboat has no mail server "
            f"(LIFEBOAT_SMTP_HOST); nothing is sent there until someone there follows the link made on "
            f"{sent:%Y-%m-%d %H:%M} UTC. Ask the operator to hand it over, or press “Send the link again” "
            "on the Destinations page once a mail server is set up."
        )
    if sent is not None and destination.confirm_refused:
        return (
            f"Waiting for confirmation, but the mail server refused the link we emailed to {to} on "
            f"{sent:%Y-%m-%d %H:%M} UTC ({destination.confirm_refused}), so it cannot be confirmed. "
            "Check the address and correct it, or remove this destination; nothing is sent there meanwhile."
        )
    if sent is None:  # saved while its mailbox had its budget of links (`jobs.destination_confirmation`)
        return (
            f"Waiting for confirmation: no link has been sent to {to} yet, because that mailbox had as many "
            "confirmation links as Lifeboat sends one in an hour; nothing is sent there until someone there follows "
            "one. Press “Send the link again” on the Destinations page later, "
            f"or POST /api/v1/destinations/{destination.id}/confirmation."
        )
    when = f" on {sent:%Y-%m-%d %H:%M} UTC" if sent is not None else ""
    # Read on the page, in the API and from the CLI (which has no resend command): both ways are named.
    return (
        f"Waiting for confirmation: nothing is sent to {to} until someone there follows the link we emailed{when}. "
        "No email arrived, or the link expired? Press “Send the link again” on the Destinations page, "
        f"or POST /api/v1/destinations/{destination.id}/confirmation."
    )


def waiting_destinations(session: Session, user: User) -> list[str]:
    """The reasons of `user`'s enabled destinations that are skipped for want of confirmation (for a run's words)."""
    rows = session.scalars(
        select(Destination)
        .where(Destination.user_id == user.id, Destination.enabled.is_(True), Destination.kind == "email")
        .order_by(Destination.id)
    )
    return [f"Not sent to {row.label}. {waiting_reason(row, user)}" for row in rows if not receives(row, user)]
