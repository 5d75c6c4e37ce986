"""What /admin/staff says of the new staff member's invitation, by what a real mail server (aiosmtpd) answered.

The page said "a link to choose a password is on its way to them" without
asking the mail server, as sign-up and resets once did (user trial 7). Now it
waits for the first try (`jobs.account_mail.outcome`): taken is "emailed",
451 is "delayed" and tried again in the background, and 550 shows the
server's words with the one-time link to hand over, since the account exists
and no email reached anyone.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from jobs import account_mail
from store import AuditEvent, User, get_db
from tests.servers.smtp import REJECT_RCPT, SMTP_USER, TEMPFAIL_RCPT, Received, SmtpServer
from tests.web.conftest import ADMIN
from tests.web.mail_helpers import BASE_URL, assert_no_mail, link_in, use_mail_server, wait_for_mail
from tests.web.staff_helpers import admin_form

pytestmark = pytest.mark.server

HELPER = "helper@example.com"


@pytest.fixture
def mail(app: Flask, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    use_mail_server(app, smtp_server)
    monkeypatch.setattr(account_mail, "RETRY_DELAYS", (0.05, 0.05, 0.05))
    return smtp_server


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def create(client: FlaskClient, email: str = HELPER) -> dict[str, str]:
    return {**admin_form(client), "email": email, "role": "support", "reason": "joins support"}


def handover_link(page: str) -> str:
    link = re.search(r'<code class="token-value" id="handover-link">([^<]+)</code>', page)
    assert link is not None, page
    return link.group(1)


def assert_sets_a_password(client: FlaskClient, link: str) -> None:
    path = link.removeprefix(BASE_URL)
    assert path.startswith("/reset/") and client.get(path).status_code == 200


def assert_invitation_arrives(app: Flask, mail: SmtpServer) -> None:
    """One message reaches HELPER, and its link sets a password."""
    (message,) = wait_for_mail(mail)
    assert message.rcpt_tos == [HELPER]
    assert_sets_a_password(app.test_client(), link_in(message, "/reset/"))


def test_an_invitation_the_server_takes_is_said_as_emailed_and_its_link_works(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], mail: SmtpServer
) -> None:
    client, _, _ = enrolled_admin

    answer = client.post("/admin/staff", data=create(client), follow_redirects=True)

    said = text_of(answer.get_data(as_text=True))
    assert f"Created support account {HELPER} and emailed them a link to choose a password." in said
    assert "handover-link" not in answer.get_data(as_text=True)  # the link went by email only
    assert_invitation_arrives(app, mail)


def test_a_refused_address_is_said_with_the_servers_words_and_the_link_is_handed_over(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], mail: SmtpServer
) -> None:
    client, _, _ = enrolled_admin
    mail.script(REJECT_RCPT)

    answer = client.post("/admin/staff", data=create(client, "no.such.person@example.com"))

    page = answer.get_data(as_text=True)
    said = text_of(page)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert "The mail server refused to take mail for no.such.person@example.com, so no email was sent." in said
    assert "The mail server said: 550 5.1.1" in said
    assert "deactivate this account and create one with the right address" in said
    assert "Give them this link privately" in said and 'role="alert"' in page
    assert "emailed them" not in said and "on its way" not in said
    assert_sets_a_password(app.test_client(), handover_link(page))
    assert_no_mail(mail)


def test_a_temporary_failure_is_said_as_delayed_and_the_invitation_arrives_on_a_retry(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], mail: SmtpServer
) -> None:
    client, _, _ = enrolled_admin
    mail.script(TEMPFAIL_RCPT)

    answer = client.post("/admin/staff", data=create(client), follow_redirects=True)

    said = text_of(answer.get_data(as_text=True))
    assert f"The mail server could not take mail for {HELPER} just now" in said
    assert "Lifeboat tries again over the next few minutes" in said and "Forgot your password?" in said
    assert "emailed them" not in said and "handover-link" not in answer.get_data(as_text=True)
    assert_invitation_arrives(app, mail)


def test_an_admin_creates_a_support_user_who_gets_a_reset_link_once_however_often_they_click(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], mail: SmtpServer
) -> None:
    client, _, _ = enrolled_admin
    form = {**admin_form(client), "email": "New.Helper@Example.com", "role": "support", "reason": "joins support"}
    assert client.post("/admin/staff", data=form).headers["Location"] == "/admin/staff"
    assert client.post("/admin/staff", data=form).status_code == 302  # the double click
    with get_db(app).session() as session:
        user = session.scalar(select(User).where(User.email == "new.helper@example.com"))
        assert user is not None and user.role == "support" and user.password_hash is None
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "create_staff", AuditEvent.actor_email == ADMIN)
        ).all()
        assert [(r.actor_email, r.target_email, r.reason) for r in rows] == [
            (ADMIN, "new.helper@example.com", "joins support")
        ]
    (message,) = wait_for_mail(mail)
    assert message.rcpt_tos == ["new.helper@example.com"] and link_in(message, "/reset/")
    page = client.get("/admin/staff").get_data(as_text=True)
    assert "new.helper@example.com" in page and "Already done" in page
    assert len(mail.received) == 1  # the second click sent nothing
    taken = {**admin_form(client), "email": ADMIN, "role": "support", "reason": "again"}
    refused = client.post("/admin/staff", data=taken)
    assert refused.status_code == 400 and "already has an account" in refused.get_data(as_text=True)


def body(message: Received) -> str:
    part = message.message().get_body(("plain",))
    assert part is not None
    return " ".join(part.get_content().split())


def test_the_new_staff_members_email_is_an_invitation_not_a_reset_they_never_asked_for(
    enrolled_admin: tuple[FlaskClient, str, list[str]], mail: SmtpServer
) -> None:
    client, _, _ = enrolled_admin
    assert client.post("/admin/staff", data=create(client)).status_code == 302
    (message,) = wait_for_mail(mail)
    text = body(message)
    assert message.message()["Subject"] == "Your Lifeboat support account: choose a password"
    assert "An administrator of Lifeboat made you a support account" in text
    assert "within 60 minutes" in text and link_in(message, "/reset/") in text
    assert "authenticator app" in text and "ignore this message" not in text and "we hope you" not in text


def test_a_login_the_mail_server_rejects_is_said_as_lifeboats_own_fault_and_the_link_is_handed_over(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], smtp_auth_server: SmtpServer
) -> None:
    client, _, _ = enrolled_admin
    use_mail_server(app, smtp_auth_server)
    app.config.update(SMTP_USERNAME=SMTP_USER, SMTP_PASSWORD="Not-the-passw0rd")

    answer = client.post("/admin/staff", data=create(client))

    page = answer.get_data(as_text=True)
    said = text_of(page)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert f"Lifeboat could not send mail to {HELPER} because of a problem with its own mail settings" in said
    assert "Not-the-passw0rd" not in said and "emailed them" not in said
    assert_sets_a_password(app.test_client(), handover_link(page))
    assert_no_mail(smtp_auth_server)
