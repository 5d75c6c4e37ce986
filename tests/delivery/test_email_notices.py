"""What account notices and archive mail to someone else's address look like, as received by aiosmtpd.

User trial 7: the account notices (confirm, reset, export failed, scrub alert,
destination notices) had no Date and no Message-ID, and an archive mailed to a
confirmed third-party address was addressed to, and greeted, the owner.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from delivery.email import EmailDelivery
from jobs import account_mail
from tests.delivery.test_email import ALICE, body_text, make_payload, only_message, smtp_settings
from tests.servers.smtp import SmtpServer

FRIEND = "friend@example.net"
HOSTILE_NAME = "Zoë <script>alert(1)</script> 山田"
NOTICES: dict[str, Callable[[str], account_mail.AccountMail]] = {
    "confirmation": lambda to: account_mail.confirmation(to, "http://lifeboat.test/confirm/x", 48),
    "already registered": lambda to: account_mail.already_registered(to, "http://lifeboat.test/reset/x"),
    "password reset": lambda to: account_mail.password_reset(to, "http://lifeboat.test/reset/x", 30),
    "password changed": lambda to: account_mail.password_changed(
        to, "in your settings", dt.datetime(2026, 12, 7, 22, 0, tzinfo=dt.UTC), "http://lifeboat.test/reset"
    ),
    "destination link": lambda to: account_mail.destination_confirmation(to, ALICE, "http://lifeboat.test/d/x", 48),
    "destination added": lambda to: account_mail.destination_added(to, FRIEND, "http://lifeboat.test/settings"),
}


def assert_dated_and_identified(msg: EmailMessage) -> None:
    """One Date (parseable, with a zone) and one Message-ID under the sender's domain, as archive mail has."""
    assert len(msg.get_all("Date") or []) == 1 and len(msg.get_all("Message-ID") or []) == 1
    assert parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert re.fullmatch(r"<[^<>@\s]+@example\.net>", str(msg["Message-ID"]))
    assert msg["Auto-Submitted"] == "auto-generated"


@pytest.mark.server
@pytest.mark.parametrize("kind", NOTICES)
def test_every_account_notice_has_date_and_message_id(smtp_server: SmtpServer, kind: str) -> None:
    account_mail.send_with(smtp_settings(smtp_server), NOTICES[kind](ALICE)).result(timeout=10)

    assert_dated_and_identified(only_message(smtp_server))


@pytest.mark.server
def test_a_job_notice_such_as_export_failed_has_date_and_message_id(smtp_server: SmtpServer) -> None:
    # The export-failed, partly-delivered and scrub notices all go through send_notice.
    EmailDelivery(smtp_settings(smtp_server), ALICE).send_notice("Your Lifeboat export failed", "It failed.\n")

    assert_dated_and_identified(only_message(smtp_server))


@pytest.mark.server
def test_two_notices_get_different_message_ids(smtp_server: SmtpServer) -> None:
    delivery = EmailDelivery(smtp_settings(smtp_server), ALICE)
    delivery.send_notice("one", "1\n")
    delivery.send_notice("two", "2\n")

    first, second = (r.message() for r in smtp_server.received)
    assert first["Message-ID"] != second["Message-ID"]


@pytest.mark.server
@pytest.mark.parametrize("size", [200_000, 20_000_000], ids=["attached", "link"])
def test_archive_mail_to_a_third_party_is_addressed_to_them_and_says_whose_it_is(
    smtp_server: SmtpServer, tmp_path: Path, size: int
) -> None:
    payload = make_payload(
        tmp_path, size=size, user_display_name=HOSTILE_NAME, download_url="https://lifeboat.test/a/x"
    )
    EmailDelivery(smtp_settings(smtp_server), FRIEND).deliver(payload)

    msg = only_message(smtp_server)
    assert msg["To"] == FRIEND and msg["To"].addresses[0].display_name == ""
    text = body_text(msg).replace("\r\n", "\n")
    assert text.startswith(f"Hello,\n\n{HOSTILE_NAME} ({ALICE}) asked Lifeboat to send you a copy of their archive")
    assert "Here is your" not in text and f"Hello {HOSTILE_NAME}" not in text
    assert f"from {HOSTILE_NAME} ({ALICE})" in str(msg["Subject"])
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert "<script>" not in html.get_content() and "asked Lifeboat to send you a copy" in html.get_content()
    assert_dated_and_identified(msg)


@pytest.mark.server
def test_archive_mail_to_the_owners_own_address_still_greets_them_by_name(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    # The same address in another case is still the owner's.
    EmailDelivery(smtp_settings(smtp_server), ALICE.upper()).deliver(make_payload(tmp_path))

    msg = only_message(smtp_server)
    assert msg["To"].addresses[0].display_name == "Alice Example"
    assert body_text(msg).replace("\r\n", "\n").startswith("Hello Alice Example,\n\nHere is your Lifeboat archive")
