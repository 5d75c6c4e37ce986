"""The console's action forms: each carries CSRF, a reason and a fresh request key; staff only; once per key."""

from __future__ import annotations

import re

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from sqlalchemy import select

from store import Archive, AuditEvent, Database, Destination, ExportRun, Schedule, User
from store.passwords import hash_password
from tests.web.conftest import PASSWORD, csrf_token, sign_in
from web.staff_access import STAFF_VERIFIED_KEY

ACTIONS = ("resend", "export", "pause", "resume", "revoke-credentials")


@pytest.fixture
def staff_client(app: Flask, db: Database, alice_user: int) -> FlaskClient:
    """A support member, signed in with their second factor passed."""
    with db.session(write=True) as session:
        session.add(User(email="helper@example.com", password_hash=hash_password(PASSWORD), role="support"))
    client = app.test_client()
    assert sign_in(client, "helper@example.com").status_code == 302
    with client.session_transaction() as flask_session:
        flask_session[STAFF_VERIFIED_KEY] = True
    return client


def post(client: FlaskClient, user_id: int, action: str, **form: str) -> tuple[int, str, list[str]]:
    """POST one action's form with a CSRF token; the status, where it went and what it flashed."""
    data = {"csrf_token": csrf_token(client, "/settings"), **form}
    response = client.post(f"/support/users/{user_id}/{action}", data=data)
    with client.session_transaction() as flask_session:
        flashed = [message for _, message in flask_session.pop("_flashes", [])]
    return response.status_code, response.headers.get("Location", "") or response.get_data(as_text=True), flashed


def audit(db: Database) -> list[AuditEvent]:
    with db.session() as session:
        return list(session.scalars(select(AuditEvent)))


def test_the_partial_has_one_form_per_action_each_with_csrf_a_reason_and_its_own_request_key(
    app: Flask, db: Database, alice_user: int
) -> None:
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        archive = Archive(user_id=alice_user, filename="a.zip", relpath="a.zip", sha256="0" * 64, size=1)
        destination = Destination(user_id=alice_user, kind="email", label="Inbox", enabled=True)
        session.add_all([archive, destination])
        session.flush()
        session.expunge_all()
    with app.test_request_context("/support/users/1"):
        page = render_template(
            "support/_actions.html",
            user=user,
            archives=[archive],
            destinations=[destination],
            schedule=Schedule(enabled=True),  # running, so pause is offered (and resume once paused)
        )
        paused = render_template("support/_actions.html", user=user, schedule=Schedule(enabled=False))
        bare = render_template("support/_actions.html", user=user)
        nobody = render_template("support/_actions.html")
    forms = re.findall(r"<form .*?</form>", page, re.S)
    actions = [re.search(r'action="([^"]+)"', form).group(1) for form in forms]  # type: ignore[union-attr]
    assert sorted(actions) == sorted(
        [f"/support/users/{alice_user}/{a}" for a in ACTIONS if a != "resume"]
        + [f"/support/users/{alice_user}/destinations/{destination.id}/retest"]
    )
    keys = [re.search(r'name="request_key" value="([^"]+)"', form).group(1) for form in forms]  # type: ignore[union-attr]
    assert len(set(keys)) == len(forms)  # a fresh key per form
    assert all('name="csrf_token"' in form and 'name="reason"' in form and "required" in form for form in forms)
    assert archive.id in page and "alice@example.com" in page
    # Without archives or destinations the other forms still render; without a user, nothing does.
    assert "No verified archive to re-send." in bare and f"/support/users/{alice_user}/export" in bare
    assert "<form" not in nobody
    assert f"/support/users/{alice_user}/resume" in paused and f"/support/users/{alice_user}/pause" not in paused


def test_an_action_runs_flashes_its_outcome_and_goes_back_to_the_users_page(
    staff_client: FlaskClient, db: Database, alice_user: int
) -> None:
    status, where, flashed = post(staff_client, alice_user, "export", reason="Ticket 9", request_key="k1")
    assert (status, where) == (302, f"/support/users/{alice_user}")
    assert flashed and flashed[0].startswith("Export started for alice@example.com")
    [row] = audit(db)
    assert (row.action, row.actor_email, row.reason, row.target_user_id) == (
        "export.start",
        "helper@example.com",
        "Ticket 9",
        alice_user,
    )
    with db.session() as session:
        [run] = session.scalars(select(ExportRun))
        assert run.trigger == "support"


def test_the_same_form_sent_twice_acts_once_and_says_so(
    staff_client: FlaskClient, db: Database, alice_user: int
) -> None:
    post(staff_client, alice_user, "revoke-credentials", reason="Leak", request_key="twice")
    status, _where, flashed = post(staff_client, alice_user, "revoke-credentials", reason="Leak", request_key="twice")
    assert status == 302 and "already sent: nothing was done again" in flashed[0]
    assert len(audit(db)) == 1


def test_a_missing_reason_is_a_400_page_naming_it_and_nothing_is_done(
    staff_client: FlaskClient, db: Database, alice_user: int
) -> None:
    status, body, _ = post(staff_client, alice_user, "export", reason="  ", request_key="k")
    assert status == 400 and "Give a reason" in body
    assert audit(db) == []


def test_an_unknown_user_is_404_and_a_refusal_is_flashed(staff_client: FlaskClient, alice_user: int) -> None:
    status, body, _ = post(staff_client, 987654, "export", reason="r", request_key="k")
    assert status == 404 and "no user with id 987654" in body
    status, _where, flashed = post(staff_client, alice_user, "resume", reason="r", request_key="k2")
    assert status == 302 and flashed[0].startswith("Nothing was done:") and "not paused" in flashed[0]


def test_a_form_without_its_csrf_token_is_refused(staff_client: FlaskClient, db: Database, alice_user: int) -> None:
    response = staff_client.post(f"/support/users/{alice_user}/export", data={"reason": "r", "request_key": "k"})
    assert response.status_code == 400
    assert audit(db) == []


def test_a_regular_user_gets_403_and_the_signed_out_are_sent_to_sign_in(
    signed_in: FlaskClient, app: Flask, db: Database, alice_user: int
) -> None:
    for action in ACTIONS:
        status, _, _ = post(signed_in, alice_user, action, reason="r", request_key=f"k-{action}")
        assert status == 403
    signed_out = app.test_client()
    data = {"reason": "r", "csrf_token": csrf_token(signed_out, "/login")}
    response = signed_out.post(f"/support/users/{alice_user}/export", data=data)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert audit(db) == []
    with db.session() as session:
        assert list(session.scalars(select(ExportRun))) == []
