"""What the account pages say when the mail server refuses or puts off the message, on a real aiosmtpd.

User trial 7: sign-up, the signed-in "send the link again" and password
resets said "We sent a message" while the server had answered 550 (no such
user) or 451 (try later), and nothing tried the 451 again. Now a refusal is
said as one, a temporary failure is "delayed" and tried again in the
background, and the pages still answer alike whether or not an address has
an account.
"""

from __future__ import annotations

import re
import threading

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from jobs import account_mail
from jobs.account_mail import Outcome, Result
from tests.servers.smtp import REJECT_RCPT, TEMPFAIL_DATA, TEMPFAIL_RCPT, SmtpServer
from tests.web.conftest import csrf_token, sign_in
from tests.web.mail_helpers import assert_no_mail, link_in, use_mail_server, wait_for_mail
from tests.web.test_accounts import NEW_PASSWORD, confirmed_at, request_reset, sign_up

pytestmark = pytest.mark.server


@pytest.fixture
def mail(app: Flask, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    use_mail_server(app, smtp_server)
    monkeypatch.setattr(account_mail, "RETRY_DELAYS", (0.05, 0.05, 0.05))
    return smtp_server


def said(html: str) -> str:
    """The page's title and message, as text."""
    return " ".join(re.sub(r"<[^>]+>", " ", html[html.index("<h1>") :]).split())


def flashed(html: str) -> str:
    """The flashed messages, as text."""
    return " ".join(m for m in re.findall(r'<p class="flash [a-z]+"[^>]*>([^<]*)</p>', html))


def resend_while(app: Flask, mail: SmtpServer, address: str, reply: str) -> TestResponse:
    """Sign `address` up (its first link arrives), sign in, and ask for the link again while the server says `reply`."""
    client = app.test_client()
    sign_up(client, address)
    wait_for_mail(mail)
    sign_in(client, address, NEW_PASSWORD)
    mail.script(reply)
    return client.post("/confirm/resend", data={"csrf_token": csrf_token(client, "/")}, follow_redirects=True)


def test_a_refused_address_at_sign_up_is_said_as_refused_with_the_servers_words(app: Flask, mail: SmtpServer) -> None:
    mail.script(REJECT_RCPT)

    page = said(sign_up(app.test_client(), "reject.me@example.com").get_data(as_text=True))

    assert page.startswith("Message not delivered The mail server refused to take mail for reject.me@example.com")
    assert "Check that the address is spelled right" in page and "550 5.1.1" in page
    assert "We sent" not in page and "Check your email" not in page
    assert_no_mail(mail)


def test_a_refused_sign_up_reads_the_same_whether_or_not_the_address_has_an_account(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    mail.script(REJECT_RCPT, REJECT_RCPT)

    new = sign_up(app.test_client(), "nobody-yet@example.com").get_data(as_text=True)
    taken = sign_up(app.test_client(), "alice@example.com").get_data(as_text=True)

    assert "Message not delivered" in new
    assert taken.replace("alice@example.com", "X") == new.replace("nobody-yet@example.com", "X")


def test_a_temporary_failure_at_sign_up_says_delayed_and_is_tried_again_until_it_arrives(
    app: Flask, mail: SmtpServer
) -> None:
    mail.script(TEMPFAIL_RCPT, TEMPFAIL_DATA)  # the first try and the first retry fail; the second retry works

    page = said(sign_up(app.test_client(), "tempfail@example.com").get_data(as_text=True))

    assert page.startswith("Message delayed The mail server could not take mail for tempfail@example.com just now")
    assert "tries again" in page and "We sent" not in page
    (message,) = wait_for_mail(mail)
    assert message.rcpt_tos == ["tempfail@example.com"]
    app.test_client().get(link_in(message, "/confirm/"))
    assert confirmed_at(app, "tempfail@example.com") is not None


def test_the_signed_in_resend_says_the_link_was_refused_not_sent(app: Flask, mail: SmtpServer) -> None:
    response = resend_while(app, mail, "dave@example.com", REJECT_RCPT)

    text = flashed(response.get_data(as_text=True))
    assert "We sent a new confirmation link" not in text
    assert "The mail server refused to take mail for dave@example.com" in text and "550 5.1.1" in text
    assert 'class="flash error"' in response.get_data(as_text=True)


def test_the_signed_in_resend_says_delayed_and_the_link_arrives_later(app: Flask, mail: SmtpServer) -> None:
    response = resend_while(app, mail, "erin@example.com", TEMPFAIL_RCPT)

    assert "The mail server could not take mail for erin@example.com just now" in flashed(
        response.get_data(as_text=True)
    )
    wait_for_mail(mail, 2)


def test_a_refused_reset_reads_the_same_whether_or_not_the_address_has_an_account(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    mail.script(REJECT_RCPT, REJECT_RCPT)

    known = request_reset(app.test_client(), "alice@example.com").get_data(as_text=True)
    unknown = request_reset(app.test_client(), "nobody@example.com").get_data(as_text=True)

    assert "Message not delivered" in known and "550 5.1.1" in known
    assert known.replace("alice@example.com", "X") == unknown.replace("nobody@example.com", "X")
    assert_no_mail(mail)


def test_a_reset_the_server_takes_still_says_check_your_email_and_sends_only_to_an_account(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    known = request_reset(app.test_client(), "alice@example.com").get_data(as_text=True)
    unknown = request_reset(app.test_client(), "nobody@example.com").get_data(as_text=True)

    assert "Check your email" in known
    assert known.replace("alice@example.com", "X") == unknown.replace("nobody@example.com", "X")
    assert [m.rcpt_tos for m in wait_for_mail(mail)] == [["alice@example.com"]]


def test_a_message_that_never_gets_through_is_tried_a_few_times_then_given_up(app: Flask, mail: SmtpServer) -> None:
    tries = len(account_mail.RETRY_DELAYS) + 1
    mail.script(*[TEMPFAIL_RCPT] * (tries + 1))  # one more than will be used
    final: list[Result] = []
    done = threading.Event()

    def record(result: Result) -> None:
        final.append(result)
        done.set()

    first = account_mail.send(app.config, account_mail.confirmation("late@example.com", "http://x/c", 48), record)

    assert first.result(timeout=10) == Result(Outcome.DELAYED)
    assert done.wait(10) and final == [Result(Outcome.DELAYED)]
    assert list(mail.handler.steps) == [TEMPFAIL_RCPT]  # exactly `tries` attempts
    assert mail.received == []


def test_the_final_outcome_of_a_refused_link_reaches_its_hook(app: Flask, mail: SmtpServer) -> None:
    # For jobs.destination_confirmation: a destination's status must not say a refused link was emailed.
    mail.script(REJECT_RCPT)
    final: list[Result] = []
    mail_ = account_mail.destination_confirmation("reject.friend@example.com", "alice@example.com", "http://x/d", 48)

    result = account_mail.send(app.config, mail_, final.append).result(timeout=10)

    assert result.outcome is Outcome.REFUSED and "550 5.1.1" in result.reply and final == [result]
