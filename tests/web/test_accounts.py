"""Sign-up with email confirmation, password reset by a link that works once, password change.

Mail goes to a real SMTP server on loopback (aiosmtpd, tests/servers/smtp.py)
and links are followed from the message as received.
"""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from sqlalchemy import select
from werkzeug.test import TestResponse

from jobs import api_tokens
from store import ExportRun, User, get_db
from store.accounts import find_user
from store.base import utcnow
from tests.servers.smtp import SmtpServer
from tests.web.conftest import PASSWORD, csrf_token, sign_in
from tests.web.mail_helpers import assert_no_mail, link_in, use_mail_server, wait_for_mail

NEW_PASSWORD = "a much longer passphrase"


@pytest.fixture
def mail(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    use_mail_server(app, smtp_server)
    return smtp_server


def sign_up(client: FlaskClient, email: str, password: str = NEW_PASSWORD, **extra: str) -> TestResponse:
    form = {"email": email, "password": password, "confirm": password, "csrf_token": csrf_token(client, "/signup")}
    form.update(extra)
    return client.post("/signup", data=form)


def request_reset(client: FlaskClient, email: str) -> TestResponse:
    return client.post("/reset", data={"email": email, "csrf_token": csrf_token(client, "/reset")})


def choose_password(client: FlaskClient, path: str, password: str = NEW_PASSWORD) -> TestResponse:
    page = client.get(path)
    if page.status_code != 200:
        return page
    return client.post(path, data={"password": password, "confirm": password, "csrf_token": csrf_token(client, path)})


def confirmed_at(app: Flask, email: str) -> object:
    from store import get_db

    with get_db(app).session() as session:
        user = find_user(session, email)
        return None if user is None else user.email_confirmed_at


# --- sign-up and confirmation ---


def test_without_a_mail_server_sign_up_says_no_email_was_sent_rather_than_check_your_email(app: Flask) -> None:
    assert not app.config.get("SMTP_HOST")  # the embedded default
    page = sign_up(app.test_client(), "Bob@Example.com", name="Bob").get_data(as_text=True)
    assert "No email sent" in page and "Check your email" not in page
    assert "no mail server set up (LIFEBOAT_SMTP_HOST), so no message can reach bob@example.com" in page
    assert confirmed_at(app, "bob@example.com") is None  # the account waits for the link, as with mail


@pytest.mark.server
def test_sign_up_sends_a_link_that_confirms_the_address(app: Flask, mail: SmtpServer) -> None:
    client = app.test_client()
    response = sign_up(client, "Bob@Example.com", name="Bob")
    assert response.status_code == 200
    assert "We sent a message to bob@example.com" in response.get_data(as_text=True)
    (message,) = wait_for_mail(mail)
    assert message.rcpt_tos == ["bob@example.com"]
    assert message.message()["Subject"] == "Confirm your Lifeboat account"
    assert confirmed_at(app, "bob@example.com") is None

    response = client.get(link_in(message, "/confirm/"))
    assert response.status_code == 302
    assert confirmed_at(app, "bob@example.com") is not None
    assert sign_in(client, "bob@example.com", NEW_PASSWORD).status_code == 302
    assert "Confirm your address" not in client.get("/").get_data(as_text=True)


@pytest.mark.server
def test_an_unconfirmed_account_signs_in_sees_a_banner_and_cannot_export(app: Flask, mail: SmtpServer) -> None:
    client = app.test_client()
    sign_up(client, "carol@example.com")
    wait_for_mail(mail)
    assert sign_in(client, "carol@example.com", NEW_PASSWORD).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Confirm your address carol@example.com" in page

    response = client.post("/export", data={"csrf_token": csrf_token(client, "/")}, follow_redirects=True)
    assert "Confirm your email address first" in response.get_data(as_text=True)
    from store import get_db

    with get_db(app).session() as session:
        assert session.scalars(select(ExportRun)).all() == []


@pytest.mark.server
def test_the_banner_sends_a_new_confirmation_link(app: Flask, mail: SmtpServer) -> None:
    client = app.test_client()
    sign_up(client, "dave@example.com")
    wait_for_mail(mail)
    sign_in(client, "dave@example.com", NEW_PASSWORD)
    response = client.post("/confirm/resend", data={"csrf_token": csrf_token(client, "/")}, follow_redirects=True)
    assert "We sent a new confirmation link" in response.get_data(as_text=True)
    second = wait_for_mail(mail, 2)[1]
    client.get(link_in(second, "/confirm/"))
    assert confirmed_at(app, "dave@example.com") is not None


@pytest.mark.server
def test_signing_up_with_a_registered_address_answers_the_same_and_changes_nothing(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    new = sign_up(app.test_client(), "nobody-yet@example.com").get_data(as_text=True)
    taken = sign_up(app.test_client(), "alice@example.com").get_data(as_text=True)
    assert taken.replace("alice@example.com", "X") == new.replace("nobody-yet@example.com", "X")
    messages = wait_for_mail(mail, 2)
    to_alice = next(m for m in messages if m.rcpt_tos == ["alice@example.com"])
    assert to_alice.message()["Subject"] == "You already have a Lifeboat account"
    # Her password still works; the one typed at sign-up does not.
    assert sign_in(app.test_client(), "alice@example.com", PASSWORD).status_code == 302
    assert sign_in(app.test_client(), "alice@example.com", NEW_PASSWORD).status_code != 302


@pytest.mark.server
def test_a_tampered_or_expired_confirmation_link_confirms_nothing(
    app: Flask, mail: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    now = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now - 4 * 24 * 3600)
    sign_up(client, "erin@example.com")
    old = link_in(wait_for_mail(mail)[0], "/confirm/")
    monkeypatch.undo()
    expired = client.get(old, follow_redirects=True).get_data(as_text=True)
    assert "This confirmation link has expired" in expired
    tampered = client.get(old[:-3] + "abc", follow_redirects=True).get_data(as_text=True)
    assert "This confirmation link is not valid" in tampered
    assert confirmed_at(app, "erin@example.com") is None


@pytest.mark.server
def test_sign_up_can_be_switched_off(app: Flask, mail: SmtpServer) -> None:
    app.config["SIGNUP_ENABLED"] = False
    client = app.test_client()
    assert client.get("/signup").status_code == 404
    assert "Create an account" not in client.get("/login").get_data(as_text=True)


HOSTILE = [
    ({"email": "x" * 400 + "@example.com"}, "email", "That email address is too long (at most 254 characters)."),
    ({"email": "bob@example.com\r\nBcc: eve@evil.example"}, "email", "Enter one email address"),
    ({"email": "bob@example.com, eve@evil.example"}, "email", "Enter one email address"),
    ({"email": "bob\uff20example.com"}, "email", "Enter one email address"),
    # Mail to it needs SMTPUTF8, which Lifeboat does not use: the confirmation link could never arrive.
    ({"email": "jörg@example.com"}, "email", "plain letters (a to z), digits and . _ + - before the @"),
    ({"name": "Bob\r\nBcc: eve@evil.example"}, "name", "Use a name on one line"),
    ({"name": "=?UTF-8?Q?Bob=0ABcc:_eve@evil.example?="}, "name", "Use a name on one line"),
    ({"name": "Bob\u2028Bcc: eve@evil.example"}, "name", "Use a name on one line"),
    ({"name": "Bob\u202egnp.exe"}, "name", "Your name must be one line of visible text"),  # user trial 7, item 12
    ({"name": "B" * 101}, "name", "Use a name of at most 100 characters."),
    ({"password": "short", "confirm": "short"}, "password", "at least 10 characters"),
    ({"password": "p" * 5000, "confirm": "p" * 5000}, "password", "at most 256 characters"),
    ({"password": "ten chars\x00!", "confirm": "ten chars\x00!"}, "password", "control characters"),
    ({"confirm": "something else entirely"}, "confirm", "The two new passwords differ"),
]


@pytest.mark.server
@pytest.mark.parametrize(("fields", "field", "words"), HOSTILE, ids=[f"{h[1]}-{n}" for n, h in enumerate(HOSTILE)])
def test_hostile_sign_up_input_gets_one_clear_message(
    app: Flask, mail: SmtpServer, fields: dict[str, str], field: str, words: str
) -> None:
    client = app.test_client()
    form = {"email": "bob@example.com", "name": "Bob", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    form.update(fields)
    form["csrf_token"] = csrf_token(client, "/signup")
    response = client.post("/signup", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count('class="field-error"') == 1, page
    assert f'id="{field}-error"' in page
    assert words in page
    assert "Traceback" not in page and "eve@evil.example" not in page.split("<form")[0]
    assert confirmed_at(app, "bob@example.com") is None
    assert_no_mail(mail, wait=0.1)


@pytest.mark.server
def test_a_name_in_any_script_is_welcome(app: Flask, mail: SmtpServer) -> None:
    sign_up(app.test_client(), "zoe@example.com", name="Zoë 山田 👩‍🚀")
    wait_for_mail(mail)
    from store import get_db

    with get_db(app).session() as session:
        user = find_user(session, "zoe@example.com")
        assert user is not None and user.display_name == "Zoë 山田 👩‍🚀"


def test_an_empty_sign_up_form_gets_one_message_per_empty_field(app: Flask) -> None:
    client = app.test_client()
    form = {"email": "", "name": "", "password": "", "confirm": "", "csrf_token": csrf_token(client, "/signup")}
    page = client.post("/signup", data=form).get_data(as_text=True)
    errors = dict(re.findall(r'<p class="field-error" id="(\w+)-error">([^<]+)</p>', page))
    assert errors == {
        "email": "Enter your email address, such as name@example.com.",
        "password": "Choose a password.",
        "confirm": "Type the password again.",
    }


def test_a_password_change_with_the_new_password_once_asks_for_it_again(signed_in: FlaskClient) -> None:
    form = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": "", "csrf_token": ""}
    form["csrf_token"] = csrf_token(signed_in, "/account/password")
    page = signed_in.post("/account/password", data=form).get_data(as_text=True)
    errors = dict(re.findall(r'<p class="field-error" id="(\w+)-error">([^<]+)</p>', page))
    assert errors == {"confirm": "Type the new password again."}


@pytest.mark.parametrize("path", ["/signup", "/reset", "/account/password", "/confirm/resend"])
def test_every_account_form_needs_its_csrf_token(app: Flask, signed_in: FlaskClient, path: str) -> None:
    response = signed_in.post(path, data={"email": "alice@example.com", "password": "x", "current": PASSWORD})
    assert response.status_code == 400


# --- password reset ---


@pytest.mark.server
def test_a_reset_link_works_once(app: Flask, mail: SmtpServer, alice_user: int) -> None:
    client = app.test_client()
    request_reset(client, "alice@example.com")
    (message,) = wait_for_mail(mail)
    assert message.message()["Subject"] == "Choose a new Lifeboat password"
    path = link_in(message, "/reset/")

    assert choose_password(client, path).status_code == 302
    assert sign_in(app.test_client(), "alice@example.com", NEW_PASSWORD).status_code == 302
    assert sign_in(app.test_client(), "alice@example.com", PASSWORD).status_code != 302

    again = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert "already used" in again
    retry = {"password": "yet another password", "confirm": "yet another password"}
    response = client.post(path, data={**retry, "csrf_token": csrf_token(client, "/reset")})
    assert response.status_code == 302
    assert sign_in(app.test_client(), "alice@example.com", NEW_PASSWORD).status_code == 302


@pytest.mark.server
def test_a_reset_link_expires(app: Flask, mail: SmtpServer, alice_user: int, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now - app.config["RESET_LINK_MAX_AGE"] - 5)
    request_reset(app.test_client(), "alice@example.com")
    path = link_in(wait_for_mail(mail)[0], "/reset/")
    monkeypatch.undo()
    page = app.test_client().get(path, follow_redirects=True).get_data(as_text=True)
    assert "This password reset link has expired" in page
    assert sign_in(app.test_client(), "alice@example.com", PASSWORD).status_code == 302


@pytest.mark.server
def test_a_newer_reset_link_or_password_change_retires_older_links(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    request_reset(app.test_client(), "alice@example.com")
    request_reset(app.test_client(), "alice@example.com")
    first, second = (link_in(m, "/reset/") for m in wait_for_mail(mail, 2))
    assert choose_password(app.test_client(), second).status_code == 302
    assert "already used" in app.test_client().get(first, follow_redirects=True).get_data(as_text=True)


@pytest.mark.server
def test_a_reset_answers_the_same_whether_or_not_the_address_has_an_account(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    known = request_reset(app.test_client(), "alice@example.com")
    unknown = request_reset(app.test_client(), "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data(as_text=True).replace("alice@example.com", "X") == unknown.get_data(as_text=True).replace(
        "nobody@example.com", "X"
    )
    assert [m.rcpt_tos for m in wait_for_mail(mail)] == [["alice@example.com"]]
    assert_no_mail_beyond(mail, 1)


def assert_no_mail_beyond(server: SmtpServer, count: int) -> None:
    time.sleep(0.3)
    assert len(server.received) == count


@pytest.mark.server
def test_reset_requests_are_limited_per_address_and_say_when_to_try_again(
    app: Flask, mail: SmtpServer, alice_user: int
) -> None:
    for _ in range(3):
        assert request_reset(app.test_client(), "alice@example.com").status_code == 200
    refused = request_reset(app.test_client(), "ALICE@example.com ")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert "Too many requests" in refused.get_data(as_text=True)
    assert len(wait_for_mail(mail, 3)) == 3
    assert_no_mail_beyond(mail, 3)


@pytest.mark.server
def test_sign_ups_are_limited_per_client(app: Flask, mail: SmtpServer) -> None:
    app.config["ACCOUNT_MAIL_ADDRESS_LIMITS"] = "2/hour"
    assert sign_up(app.test_client(), "one@example.com").status_code == 200
    assert sign_up(app.test_client(), "two@example.com").status_code == 200
    assert sign_up(app.test_client(), "three@example.com").status_code == 429


@pytest.mark.server
def test_following_a_reset_link_confirms_the_address(app: Flask, mail: SmtpServer) -> None:
    client = app.test_client()
    sign_up(client, "frank@example.com")
    wait_for_mail(mail)
    request_reset(client, "frank@example.com")
    choose_password(client, link_in(wait_for_mail(mail, 2)[1], "/reset/"))
    assert confirmed_at(app, "frank@example.com") is not None


# --- password change ---


def change_password(client: FlaskClient, current: str, new: str = NEW_PASSWORD) -> TestResponse:
    token = csrf_token(client, "/account/password")
    return client.post(
        "/account/password", data={"current": current, "password": new, "confirm": new, "csrf_token": token}
    )


def test_changing_the_password_keeps_this_session_and_ends_the_others(app: Flask, alice_user: int) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    assert sign_in(here).status_code == 302 and sign_in(elsewhere).status_code == 302
    assert change_password(here, PASSWORD).status_code == 302
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    assert sign_in(app.test_client(), password=NEW_PASSWORD).status_code == 302


def test_a_password_change_says_api_tokens_keep_working_and_they_do(app: Flask, signed_in: FlaskClient) -> None:
    with get_db(app).session(write=True) as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        secret = api_tokens.create_token(session, user.id, "NAS script", days=30, now=utcnow()).secret
    changed = change_password(signed_in, PASSWORD)
    page = signed_in.get(changed.headers["Location"]).get_data(as_text=True)
    assert "Every other session of yours is now signed out. Your API tokens keep working: revoke any" in page
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_changing_the_password_needs_the_current_one(app: Flask, signed_in: FlaskClient) -> None:
    response = change_password(signed_in, "not my password")
    assert response.status_code == 200
    assert "That is not your current password." in response.get_data(as_text=True)
    assert sign_in(FlaskClient(app), password=PASSWORD).status_code == 302


def test_guessing_the_current_password_is_throttled(app: Flask, signed_in: FlaskClient) -> None:
    statuses = [change_password(signed_in, f"guess {n}").status_code for n in range(6)]
    assert statuses == [200] * 5 + [429]


def test_operator_created_accounts_count_as_confirmed(app: Flask, alice_user: int) -> None:
    from store import get_db

    with get_db(app).session() as session:
        user = session.get(User, alice_user)
        assert user is not None and user.email_confirmed_at is not None


@pytest.mark.server
def test_a_changed_password_is_told_to_the_accounts_address_by_settings_and_by_reset_link(
    app: Flask, mail: SmtpServer, signed_in: FlaskClient
) -> None:
    assert change_password(signed_in, PASSWORD).status_code == 302
    (changed,) = wait_for_mail(mail)
    body = changed.message().get_body(("plain",))
    assert changed.rcpt_tos == ["alice@example.com"]
    assert changed.message()["Subject"] == "Your Lifeboat password was changed"
    assert body is not None and "was changed in your settings on " in body.get_content()
    assert "/reset" in body.get_content() and "revoke the API tokens" in body.get_content()

    client = app.test_client()
    request_reset(client, "alice@example.com")
    link = link_in(wait_for_mail(mail, 2)[1], "/reset/")
    assert choose_password(client, link).status_code == 302
    told = wait_for_mail(mail, 3)[2]
    told_body = told.message().get_body(("plain",))
    assert told.rcpt_tos == ["alice@example.com"]
    assert told_body is not None and "was changed with a reset link on " in told_body.get_content()
