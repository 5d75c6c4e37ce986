"""A new email address receives no archive until someone there follows the link mailed to it.

The trial: Destinations → Add an email address → demo-copy@example.net →
Export now mailed every contact, calendar and note there, with no link to the
recipient and no word to the account's own address. Everything here goes
through a real mail server on loopback (aiosmtpd), the web pages, the JSON API
and the CLI; the links are the ones the mail server received.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

import jobs
from jobs import get_context, run_lifecycle
from jobs.destination_backends import Registry
from jobs.destination_confirmation import PATH, SALT
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from store import Database, DeliveryAttempt, Destination, ExportRun, RunEvent, User
from store.base import utcnow
from tests.servers.smtp import Received, SmtpServer
from tests.web.conftest import csrf_token
from tests.web.mail_helpers import BASE_URL, assert_no_mail, link_in, use_mail_server, wait_for_mail

pytestmark = pytest.mark.server

PAGE = "/settings/destinations"
OWN = "alice@example.com"
OTHER = "demo-copy@example.net"


@pytest.fixture
def mail(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    use_mail_server(app, smtp_server)
    jobs.init_app(app)  # the job context, rebuilt with the mail server (deliveries go there too)
    return smtp_server


def add_email(client: FlaskClient, to: str) -> Any:
    return client.post(PAGE + "/email", data={"to": to, "csrf_token": csrf_token(client, PAGE)})


def to_whom(messages: list[Received]) -> dict[str, Received]:
    return {message.rcpt_tos[0]: message for message in messages}


@dataclass(frozen=True)
class Run:
    state: str
    history: str  # every line of the run's history, as its page shows them


def export_now(app: Flask, db: Database, user_id: int) -> Run:
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
        run_id = run.id
    execute_run(get_context(app), run_id, "test-worker")
    with db.session() as session:
        done = session.get(ExportRun, run_id)
        assert done is not None
        lines = session.scalars(select(RunEvent.message).where(RunEvent.run_id == run_id).order_by(RunEvent.id))
        return Run(done.state, "\n".join(lines))


def archives_mailed_to(server: SmtpServer, address: str) -> int:
    return sum(
        1
        for message in server.received
        if address in message.rcpt_tos and any(part.get_filename() for part in message.message().iter_attachments())
    )


def destination(db: Database, user_id: int) -> Destination:
    with db.session() as session:
        (row,) = session.scalars(select(Destination).where(Destination.user_id == user_id))
        session.expunge(row)
        return row


def test_a_new_address_gets_a_link_and_the_account_a_notice_and_no_archive_goes_there_until_confirmed(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    added = add_email(signed_in, OTHER)
    assert added.status_code == 302
    messages = to_whom(wait_for_mail(mail, 2))
    assert set(messages) == {OTHER, OWN}
    link = link_in(messages[OTHER], PATH)
    asked = messages[OTHER].message()
    assert asked["Subject"] == "Confirm that you want to receive Lifeboat archives"
    notice = messages[OWN].message().get_body(("plain",))
    assert notice is not None and OTHER in notice.get_content() and f"{BASE_URL}{PAGE}" in notice.get_content()
    assert PATH not in notice.get_content()  # the notice has no confirmation link: only where to remove it

    page = signed_in.get(PAGE).get_data(as_text=True)
    assert "Waiting for confirmation" in page and "Send the link again" in page
    assert "nothing is sent to demo-copy@example.net until someone there follows the link" in page

    run = export_now(app, db, alice_user)
    assert run.state == "delivered"
    assert archives_mailed_to(mail, OTHER) == 0
    assert f"Not sent to email {OTHER}. Waiting for confirmation" in run.history

    question = app.test_client().get(link)  # the recipient: no session, no account
    text = question.get_data(as_text=True)
    assert question.status_code == 200 and OWN in text and OTHER in text and "Yes, send them to" in text
    assert destination(db, alice_user).confirmed_at is None  # opening the link (a mail scanner) agrees to nothing

    recipient = app.test_client()
    answer = recipient.post(link, data={"csrf_token": csrf_token(recipient, link)})
    assert answer.status_code == 200 and "Confirmed" in answer.get_data(as_text=True)
    assert destination(db, alice_user).confirmed_at is not None
    again = recipient.post(link, data={"csrf_token": csrf_token(recipient, "/login")})
    assert "Already confirmed" in again.get_data(as_text=True)  # idempotent: a second click is harmless

    before = archives_mailed_to(mail, OTHER)
    run = export_now(app, db, alice_user)
    assert run.state == "delivered" and archives_mailed_to(mail, OTHER) == before + 1
    assert "Waiting" not in run.history
    assert "Waiting for confirmation" not in signed_in.get(PAGE).get_data(as_text=True)


def test_the_accounts_own_confirmed_address_needs_no_link_and_receives_at_once(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    assert add_email(signed_in, OWN).status_code == 302
    assert_no_mail(mail)
    assert destination(db, alice_user).confirmed_at is not None
    run = export_now(app, db, alice_user)
    assert run.state == "delivered" and archives_mailed_to(mail, OWN) == 1


def test_the_own_address_of_an_unconfirmed_account_waits_for_the_accounts_own_confirmation(
    app: Flask, db: Database, alice_user: int, mail: SmtpServer
) -> None:
    from jobs.destination_backends import Registry
    from jobs.destination_setup import add_destination, public_view

    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        user.email_confirmed_at = None  # a web sign-up that has not followed its link yet
        shown = public_view(add_destination(session, Registry(dict(app.config)), user, "email", "me", {}), user=user)
    assert shown["status"] == "waiting" and "confirm your account's address" in shown["status_message"]
    assert_no_mail(mail)  # its own sign-up link is the one to follow
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        user.email_confirmed_at = utcnow()
    assert export_now(app, db, alice_user).state == "delivered" and archives_mailed_to(mail, OWN) == 1


def test_an_expired_altered_or_outdated_link_says_what_to_do_and_changes_nothing(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    add_email(signed_in, OTHER)
    link = link_in(to_whom(wait_for_mail(mail, 2))[OTHER], PATH)
    row = destination(db, alice_user)

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - app.config["CONFIRM_LINK_MAX_AGE"] - 60

    old = PATH + URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT, signer=Past).dumps(
        {"d": row.id, "t": OTHER}
    )
    expired = app.test_client().get(old)
    assert expired.status_code == 410 and "Send the link again" in expired.get_data(as_text=True)

    altered = link[:-8] + ("A" if link[-8] != "A" else "B") + link[-7:]
    refused = app.test_client().get(altered)
    assert refused.status_code == 404 and "not valid" in refused.get_data(as_text=True)

    # The address is changed: the link mailed to the old one confirms nothing, the new one gets its own.
    mail.handler.reset()
    token = csrf_token(signed_in, PAGE)
    edited = signed_in.post(
        f"{PAGE}/{row.id}/edit", data={f"edit-{row.id}-to": "other@example.net", "csrf_token": token}
    )
    assert edited.status_code == 200 and "We emailed a link to the new address" in edited.get_data(as_text=True)
    messages = to_whom(wait_for_mail(mail, 2))
    assert set(messages) == {"other@example.net", OWN}
    gone = app.test_client().get(link)
    assert gone.status_code == 410 and "no longer a destination" in gone.get_data(as_text=True)
    recipient = app.test_client()
    assert recipient.post(link, data={"csrf_token": csrf_token(recipient, "/login")}).status_code == 410
    assert destination(db, alice_user).confirmed_at is None


def test_editing_a_confirmed_address_needs_confirming_again(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    add_email(signed_in, OWN)
    row = destination(db, alice_user)
    assert row.confirmed_at is not None
    token = csrf_token(signed_in, PAGE)
    signed_in.post(f"{PAGE}/{row.id}/edit", data={f"edit-{row.id}-to": OTHER, "csrf_token": token})
    assert destination(db, alice_user).confirmed_at is None
    assert set(to_whom(wait_for_mail(mail, 2))) == {OTHER, OWN}
    run = export_now(app, db, alice_user)
    assert archives_mailed_to(mail, OTHER) == 0 and "Waiting for confirmation" in run.history
    with db.session() as session:
        assert session.scalars(select(DeliveryAttempt)).all() == []  # skipped, not "delivered" or "failed"


def test_send_the_link_again_mails_a_fresh_one_once_a_minute_at_most(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    add_email(signed_in, OTHER)
    wait_for_mail(mail, 2)
    row = destination(db, alice_user)
    resend = f"{PAGE}/{row.id}/confirmation"
    too_soon = signed_in.post(resend, data={"csrf_token": csrf_token(signed_in, PAGE)}, follow_redirects=True)
    assert "less than a minute ago" in too_soon.get_data(as_text=True)
    assert_no_mail_beyond(mail, 2)
    with db.session(write=True) as session:  # a minute later
        stored = session.get(Destination, row.id)
        assert stored is not None and stored.confirm_sent_at is not None
        stored.confirm_sent_at -= dt.timedelta(minutes=2)
    sent = signed_in.post(resend, data={"csrf_token": csrf_token(signed_in, PAGE)}, follow_redirects=True)
    assert f"We emailed a new link to {OTHER}" in sent.get_data(as_text=True)
    third = wait_for_mail(mail, 3)[2]
    assert third.rcpt_tos == [OTHER]
    recipient = app.test_client()
    link = link_in(third, PATH)
    assert "Confirmed" in recipient.post(link, data={"csrf_token": csrf_token(recipient, link)}).get_data(as_text=True)


def assert_no_mail_beyond(server: SmtpServer, count: int, wait: float = 0.5) -> None:
    time.sleep(wait)
    assert len(server.received) == count


def test_the_api_adds_a_waiting_address_and_sends_its_link_again(
    app: Flask, db: Database, alice_user: int, mail: SmtpServer
) -> None:
    from tests.api.conftest import make_token

    token = make_token(db, alice_user)
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    added = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=headers).get_json()
    assert added["status"] == "waiting" and added["confirmed"] is False
    assert set(to_whom(wait_for_mail(mail, 2))) == {OTHER, OWN}
    with db.session(write=True) as session:  # a minute later
        stored = session.get(Destination, added["id"])
        assert stored is not None and stored.confirm_sent_at is not None
        stored.confirm_sent_at -= dt.timedelta(minutes=2)
    again = client.post(f"/api/v1/destinations/{added['id']}/confirmation", headers=headers)
    assert again.status_code == 200 and again.get_json()["sent"] is True
    assert wait_for_mail(mail, 3)[2].rcpt_tos == [OTHER]
    assert client.post("/api/v1/destinations/999999/confirmation", headers=headers).status_code == 404


def test_asking_the_api_for_the_link_again_within_a_minute_is_429_with_retry_after_and_sends_nothing(
    app: Flask, db: Database, alice_user: int, mail: SmtpServer
) -> None:
    from tests.api.conftest import make_token

    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    client = app.test_client()
    added = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=headers).get_json()
    wait_for_mail(mail, 2)
    too_soon = client.post(f"/api/v1/destinations/{added['id']}/confirmation", headers=headers)
    assert too_soon.status_code == 429 and 50 <= int(too_soon.headers["Retry-After"]) <= 60
    body = too_soon.get_json()
    assert set(body) == {"code", "message"} and body["code"] == "too_many_requests"  # as POST /destinations' 429
    assert "\n" not in body["message"] and "Retry-After" in body["message"]
    assert_no_mail_beyond(mail, 2)


def test_the_cli_adds_a_waiting_address_and_mails_its_link(
    app: Flask, db: Database, alice_user: int, mail: SmtpServer
) -> None:
    result = app.test_cli_runner().invoke(args=["destination", "add-email", OWN, "--to", OTHER])
    assert result.exit_code == 0, result.output
    assert "status waiting: " in result.output and "Waiting for confirmation: a link went to" in result.output
    messages = to_whom(wait_for_mail(mail, 2))
    assert set(messages) == {OTHER, OWN}
    recipient = app.test_client()
    link = link_in(messages[OTHER], PATH)
    assert "Confirmed" in recipient.post(link, data={"csrf_token": csrf_token(recipient, link)}).get_data(as_text=True)
    assert export_now(app, db, alice_user).state == "delivered" and archives_mailed_to(mail, OTHER) == 1


def test_adding_and_removing_one_address_again_and_again_stops_mailing_it(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    """As sign-up, at most LIFEBOAT_ACCOUNT_MAIL_ACCOUNT_LIMITS (3 an hour) per recipient: then a 429 page."""
    for _ in range(3):
        assert add_email(signed_in, OTHER).status_code == 302
        row = destination(db, alice_user)
        signed_in.post(f"{PAGE}/{row.id}/remove", data={"csrf_token": csrf_token(signed_in, PAGE)})
    refused = add_email(signed_in, OTHER)
    assert refused.status_code == 429 and "To protect its mailbox" in refused.get_data(as_text=True)
    assert len(wait_for_mail(mail, 6)) == 6  # three links and three notices, no more
    assert_no_mail_beyond(mail, 6)


def test_a_link_mailed_for_a_removed_destination_confirms_nothing_of_another_account_given_its_id(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    """The trial: demo added and removed shared@ (id 8); bob added shared@ (id 8 again); demo's link said "Yes"."""
    add_email(signed_in, OTHER)
    alices_link = link_in(to_whom(wait_for_mail(mail, 2))[OTHER], PATH)
    alices_id = destination(db, alice_user).id
    signed_in.post(f"{PAGE}/{alices_id}/remove", data={"csrf_token": csrf_token(signed_in, PAGE)})
    with db.session(write=True) as session:
        bob = User(email="bob@example.com", email_confirmed_at=utcnow())
        session.add(bob)
        session.flush()
        bobs = add_destination(session, Registry(dict(app.config)), bob, "email", f"email {OTHER}", {"to": OTHER})
        bobs_id, bob_id = bobs.id, bob.id
    assert bobs_id == alices_id  # SQLite gave the removed row's id to the new one
    recipient = app.test_client()
    opened = recipient.get(alices_link)
    text = opened.get_data(as_text=True)
    assert opened.status_code == 410 and "no longer a destination" in text and "bob@example.com" not in text
    assert recipient.post(alices_link, data={"csrf_token": csrf_token(recipient, "/login")}).status_code == 410
    assert destination(db, bob_id).confirmed_at is None
    bobs_link = link_in(to_whom(wait_for_mail(mail, 4)[2:])[OTHER], PATH)  # bob's own link still works
    assert "Confirmed" in recipient.post(bobs_link, data={"csrf_token": csrf_token(recipient, "/login")}).get_data(
        as_text=True
    )
    assert destination(db, bob_id).confirmed_at is not None


ENCODED_WORD = "=?UTF-8?Q?=0A?=y@example.org"  # the address checker takes it; the mailer refuses it


def test_an_address_the_mailer_would_refuse_is_refused_when_saved_on_the_page_the_api_and_the_cli(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    page = add_email(signed_in, ENCODED_WORD)
    assert page.status_code == 400 and "encoded word" in page.get_data(as_text=True)
    assert "We emailed a link" not in page.get_data(as_text=True)
    from tests.api.conftest import make_token

    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    api = app.test_client().post("/api/v1/destinations", json={"kind": "email", "to": ENCODED_WORD}, headers=headers)
    assert api.status_code == 422
    refused = "The email destination is not valid: the address contains an encoded word ('=?')"
    assert api.get_json()["message"] == refused
    cli = app.test_cli_runner().invoke(args=["destination", "add-email", OWN, "--to", ENCODED_WORD])
    assert cli.exit_code != 0 and "encoded word" in cli.output
    with db.session() as session:
        assert session.scalars(select(Destination)).all() == []
    assert_no_mail(mail)


def test_adding_and_removing_one_address_through_the_api_stops_mailing_it_and_so_does_the_page(
    app: Flask, db: Database, alice_user: int, signed_in: FlaskClient, mail: SmtpServer
) -> None:
    """The trial: six POST + DELETE of victim@ mailed six links. One budget per mailbox, page and API alike."""
    from tests.api.conftest import make_token

    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    client = app.test_client()
    for _ in range(3):
        added = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=headers)
        assert added.status_code == 201
        assert client.delete(f"/api/v1/destinations/{added.get_json()['id']}", headers=headers).status_code == 204
    refused = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert refused.get_json()["message"].startswith("Too many confirmation links went to this address.")
    assert add_email(signed_in, OTHER.upper()).status_code == 429  # the page draws on the same budget
    assert client.post("/api/v1/destinations", json={"kind": "email", "to": OWN}, headers=headers).status_code == 201
    with db.session() as session:
        assert [row.settings["to"] for row in session.scalars(select(Destination))] == [OWN]
    assert len(wait_for_mail(mail, 6)) == 6  # three links and three notices, no more
    assert_no_mail_beyond(mail, 6)


def test_changing_an_address_back_and_forth_stops_mailing_that_mailbox_on_the_page_and_the_api(
    app: Flask, db: Database, alice_user: int, signed_in: FlaskClient, mail: SmtpServer
) -> None:
    """The trial alternated victim@ and victim+x@ in "Change the address": one inbox, so one budget."""
    add_email(signed_in, OWN)  # the account's own confirmed address: no link, nothing counted
    row_id = destination(db, alice_user).id
    tagged = OTHER.replace("@", "+x@")

    def edit(to: str) -> Any:
        return signed_in.post(
            f"{PAGE}/{row_id}/edit", data={f"edit-{row_id}-to": to, "csrf_token": csrf_token(signed_in, PAGE)}
        )

    for to in (OTHER, tagged, OTHER):
        assert edit(to).status_code == 200
    refused = edit(tagged)
    assert refused.status_code == 429 and "Too many confirmation links" in refused.get_data(as_text=True)
    from tests.api.conftest import make_token

    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    patched = app.test_client().patch(f"/api/v1/destinations/{row_id}", json={"to": tagged}, headers=headers)
    assert patched.status_code == 429
    assert destination(db, alice_user).settings["to"] == OTHER
    assert len(wait_for_mail(mail, 6)) == 6  # three links and three notices
    assert_no_mail_beyond(mail, 6)


def test_the_api_document_says_adding_changing_or_resending_a_destinations_link_may_answer_429() -> None:
    from tests.api.test_openapi import APP

    paths = APP.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert "429" in paths["/api/v1/destinations"]["post"]["responses"]
    assert "429" in paths["/api/v1/destinations/{destination_id}"]["patch"]["responses"]
    resend = paths["/api/v1/destinations/{destination_id}/confirmation"]["post"]["responses"]["429"]
    assert "Retry-After" in resend["description"]


def test_a_changed_address_shows_no_delivery_to_the_old_one_and_a_name_that_was_the_old_address_follows_it(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    add_email(signed_in, OWN)
    row_id = destination(db, alice_user).id
    assert export_now(app, db, alice_user).state == "delivered"
    assert "Last delivery</dt>\n        <dd>Delivered" in signed_in.get(PAGE).get_data(as_text=True)
    token = csrf_token(signed_in, PAGE)
    signed_in.post(f"{PAGE}/{row_id}/edit", data={f"edit-{row_id}-to": OTHER, "csrf_token": token})
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert "Waiting for confirmation" in page and f"email {OTHER}" in page
    assert "Delivered" not in page and "none yet" in page  # the delivery went to the old address

    from tests.api.conftest import make_token

    headers = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    client = app.test_client()
    added = client.post("/api/v1/destinations", json={"kind": "email", "to": "first@example.net"}, headers=headers)
    assert added.get_json()["label"] == "email first@example.net"  # as the page names it
    new_id = added.get_json()["id"]
    patched = client.patch(f"/api/v1/destinations/{new_id}", json={"to": "second@example.net"}, headers=headers)
    shown = patched.get_json()["destination"]
    assert shown["label"] == "email second@example.net"
    assert f"POST /api/v1/destinations/{new_id}/confirmation" in shown["status_message"]
    with db.session(write=True) as session:  # named by its bare address, as the API named one before
        stored = session.get(Destination, new_id)
        assert stored is not None
        stored.label = "second@example.net"
    patched = client.patch(f"/api/v1/destinations/{new_id}", json={"to": "third@example.net"}, headers=headers)
    assert patched.get_json()["destination"]["label"] == "email third@example.net"


def test_one_account_spending_a_mailboxs_links_cannot_stop_another_account_saving_that_address(
    app: Flask, db: Database, alice_user: int, make_account: Callable[[str], int], mail: SmtpServer
) -> None:
    """A trial: any account could block an address for an hour, and its real owner could then not add it."""
    from tests.api.conftest import make_token
    from tests.web.conftest import sign_in

    alice = {"Authorization": f"Bearer {make_token(db, alice_user)}"}
    client = app.test_client()
    for _ in range(3):  # the mailbox's whole budget of links for the hour
        added = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=alice)
        assert client.delete(f"/api/v1/destinations/{added.get_json()['id']}", headers=alice).status_code == 204
    assert client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=alice).status_code == 429

    bob = {"Authorization": f"Bearer {make_token(db, make_account('bob@example.com'))}"}
    saved = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=bob)
    assert saved.status_code == 201
    shown = saved.get_json()
    assert shown["status"] == "waiting" and shown["confirmation_sent_at"] is None
    assert "no link has been sent" in shown["status_message"]
    resend_at = dt.datetime.fromisoformat(shown["confirmation_resend_at"])
    assert utcnow() + dt.timedelta(minutes=50) < resend_at <= utcnow() + dt.timedelta(hours=1, seconds=5)
    assert client.get(f"/api/v1/destinations/{shown['id']}", headers=bob).get_json()["status"] == "waiting"
    again = client.post(f"/api/v1/destinations/{shown['id']}/confirmation", headers=bob)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 60
    assert again.get_json()["code"] == "too_many_requests"

    make_account("carol@example.com")
    carol = app.test_client()
    assert sign_in(carol, "carol@example.com").status_code == 302
    page = add_email(carol, OTHER.replace("@", "+carol@"))  # the same mailbox, on the page
    assert page.status_code == 302
    words = carol.get(PAGE).get_data(as_text=True)
    assert "is saved, but waits: too many confirmation links went to that mailbox lately" in words
    assert "Send the link again” after" in words
    with db.session() as session:
        carols = session.scalars(select(Destination).where(Destination.label.contains("+carol@"))).one()
    resend = carol.post(
        f"{PAGE}/{carols.id}/confirmation", data={"csrf_token": csrf_token(carol, PAGE)}, follow_redirects=True
    )
    assert "No link was sent to demo-copy+carol@example.net: too many confirmation links" in resend.get_data(
        as_text=True
    )

    messages = wait_for_mail(mail, 8)  # alice: three links and three notices; bob and carol: a notice each
    assert_no_mail_beyond(mail, 8)
    mailbox = [m for m in messages if m.rcpt_tos[0].replace("+carol", "") == OTHER]
    assert len(mailbox) == 3
    assert {m.rcpt_tos[0] for m in messages} == {OTHER, OWN, "bob@example.com", "carol@example.com"}


def test_a_mailbox_gets_no_more_than_its_budget_of_links_an_hour_however_many_accounts_add_it(
    app: Flask, db: Database, alice_user: int, make_account: Callable[[str], int], mail: SmtpServer
) -> None:
    from tests.api.conftest import make_token

    client = app.test_client()
    accounts = [alice_user] + [make_account(f"user{n}@example.com") for n in range(3)]
    added = []
    for account in accounts:
        headers = {"Authorization": f"Bearer {make_token(db, account)}"}
        answer = client.post("/api/v1/destinations", json={"kind": "email", "to": OTHER}, headers=headers)
        assert answer.status_code == 201  # each account may save it
        added.append((headers, answer.get_json()))
    assert [shown["confirmation_sent_at"] is not None for _, shown in added] == [True, True, True, False]
    with db.session(write=True) as session:  # a minute later: the first account asks for its link again
        stored = session.get(Destination, added[0][1]["id"])
        assert stored is not None and stored.confirm_sent_at is not None
        stored.confirm_sent_at -= dt.timedelta(minutes=2)
    headers, first = added[0]
    refused = client.post(f"/api/v1/destinations/{first['id']}/confirmation", headers=headers)
    assert refused.status_code == 429 and "from any account" in refused.get_json()["message"]
    messages = wait_for_mail(mail, 7)  # three links, four notices
    assert_no_mail_beyond(mail, 7)
    assert sum(1 for m in messages if m.rcpt_tos == [OTHER]) == 3


def test_a_recipient_whose_form_expired_is_asked_again_or_told_the_link_expired_and_never_to_sign_in(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    """The trial: the recipient (no account, not signed in) pressed "Yes" on a page left open; told to sign in."""
    add_email(signed_in, OTHER)
    link = link_in(to_whom(wait_for_mail(mail, 2))[OTHER], PATH)
    recipient = app.test_client()
    token = csrf_token(recipient, link)
    app.config["WTF_CSRF_TIME_LIMIT"] = 1  # the page was left open longer than its form lasts
    time.sleep(2.1)
    again = recipient.post(link, data={"csrf_token": token})
    text = again.get_data(as_text=True)
    assert again.status_code == 400 and "This form expired, so nothing was changed" in text
    assert "Yes, send them to" in text and "Sign in" not in text  # the link still works: it asks again
    assert destination(db, alice_user).confirmed_at is None

    token = csrf_token(recipient, link)
    app.config["CONFIRM_LINK_MAX_AGE"] = 1  # now the link has expired too
    time.sleep(2.1)
    expired = recipient.post(link, data={"csrf_token": token})
    text = expired.get_data(as_text=True)
    assert expired.status_code == 410 and "This link has expired" in text and "Sign in" not in text
    assert "Ask the person who added your address to send you a new link" in text
    assert "your Destinations page" not in text

    owner = signed_in.get(link)  # the account that added the address, signed in: it can send a new link itself
    text = owner.get_data(as_text=True)
    assert owner.status_code == 410 and "Press “Send the link again” next to this address on your Destinations" in text
    assert "Ask the person who added your address" not in text
    owners_form = signed_in.post(link, data={"csrf_token": token})
    assert "Press “Send the link again”" in owners_form.get_data(as_text=True)
    assert destination(db, alice_user).confirmed_at is None


def test_a_link_the_mail_server_refuses_is_said_as_refused_until_a_new_link_goes_out(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int, mail: SmtpServer
) -> None:
    from tests.servers.smtp import REJECT_RCPT

    mail.script(REJECT_RCPT, REJECT_RCPT)  # the link and the notice go out side by side: both refused
    assert add_email(signed_in, OTHER).status_code == 302
    deadline = time.monotonic() + 10
    while destination(db, alice_user).confirm_refused is None and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = destination(db, alice_user).confirm_refused
    assert refused is not None and refused.startswith("550 5.1.1")
    page = " ".join(signed_in.get(PAGE).get_data(as_text=True).split())
    assert f"the mail server refused the link we emailed to {OTHER}" in page and "550 5.1.1" in page
    assert "Check the address and correct it" in page
    assert "until someone there follows the link" not in page

    with db.session(write=True) as session:  # a minute later, the link is sent again and taken
        stored = session.get(Destination, destination(db, alice_user).id)
        assert stored is not None and stored.confirm_sent_at is not None
        stored.confirm_sent_at -= dt.timedelta(minutes=2)
    again = signed_in.post(
        f"{PAGE}/{destination(db, alice_user).id}/confirmation", data={"csrf_token": csrf_token(signed_in, PAGE)}
    )
    assert again.status_code == 302
    assert destination(db, alice_user).confirm_refused is None  # a new link: nothing known of it yet
    assert OTHER in wait_for_mail(mail, 1)[-1].rcpt_tos
    assert "until someone there follows the link" in " ".join(signed_in.get(PAGE).get_data(as_text=True).split())
