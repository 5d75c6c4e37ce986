"""The run page in its owner's words: the state said once, errors as sentences, advice the user can follow."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobs import get_context, run_lifecycle
from jobs.audit import Actor
from jobs.execute import execute_run
from jobs.support_actions import resend_archive
from store import Database, ExportRun, RunState
from store.base import utcnow
from tests.web.conftest import csrf_token, make_staff
from tests.web.run_helpers import run_now

TRIGGERS = ("manual", "schedule", "cli", "api", "upgrade", "support")


def _text(response: object) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))  # type: ignore[attr-defined]


def _state_line(page: str) -> str:
    found = re.search(r"<dt>State</dt><dd>(.*?)</dd>", page)
    assert found is not None
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def _resend_to_email(app: Flask, db: Database, user_id: int) -> str:
    """A support re-send of the user's archive to their own address, run here with no mail server set up."""
    first, outcome = run_now(app, db, user_id)
    assert outcome == RunState.DELIVERED
    with db.session() as session:
        run = session.get(ExportRun, first)
        assert run is not None and run.archive_id is not None
        archive_id = run.archive_id
    staff_id = make_staff(db, "helper@example.com", "support")
    actor = Actor(user_id=staff_id, email="helper@example.com", role="support")
    result = resend_archive(
        db, actor, user_id, archive_id, "email", reason="You asked for it again", request_key=None, now=utcnow()
    )
    assert result.run_id is not None
    assert execute_run(get_context(app), result.run_id, "test-worker") == RunState.FAILED
    return result.run_id


def test_a_failed_support_resend_names_the_state_once_and_says_the_operator_must_fix_the_mail_server(
    app: Flask, db: Database, signed_in: FlaskClient, alice_user: int
) -> None:
    assert not app.config.get("SMTP_HOST")  # the point of the test: this server has no mail server
    run_id = _resend_to_email(app, db, alice_user)
    html = signed_in.get(f"/runs/{run_id}").get_data(as_text=True)
    page = _text(signed_in.get(f"/runs/{run_id}"))
    assert _state_line(html) == "Failed"  # not "Failed Failed."
    assert "Email delivery is not set up on this Lifeboat server" in page
    assert "not configured Lifeboat" not in page  # the two sentences no longer run together
    assert "Only the operator of this Lifeboat service can fix this" in page
    assert "once it is fixed" not in page.lower() and "once you have fixed" not in page.lower()
    assert "ask support to send it again" in page
    assert "to your email address" in page and "their" not in page
    headers = {"X-CSRFToken": csrf_token(signed_in, "/history")}
    lines = signed_in.get(f"/api/v1/runs/{run_id}", headers=headers).get_json()["history"]
    [resend] = [line["message"] for line in lines if line["kind"] == "resend"]
    assert resend.endswith("to your email address.")  # the API reads the same as the page


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("permanent", "operator"), [(True, False), (True, True), (False, False)])
def test_what_a_run_that_gave_up_advises_is_sentences_fitting_who_fixes_it_and_who_started_it(
    trigger: str, permanent: bool, operator: bool
) -> None:
    words = run_lifecycle.given_up(3, permanent=permanent, operator=operator, trigger=trigger)
    assert words[0].isupper() and words.endswith(".") and ".." not in words
    assert ("Only the operator" in words) == operator
    assert ("Once you have fixed it" in words) == (permanent and not operator)  # the user is told to fix only theirs
    assert ("scheduled export" in words) == (trigger == "schedule")
    assert ("ask support to send it again" in words) == (trigger == "support")
    assert "Export now" in words


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("email delivery is not configured", "Email delivery is not configured."),
        ("Access denied: fix the key.", "Access denied: fix the key."),
        ("Is it up?", "Is it up?"),
        ("http://127.0.0.1:9000/ refused the connection", "http://127.0.0.1:9000/ refused the connection."),
        ("s3:PutObject was denied", "s3:PutObject was denied."),
        ("error: the key is wrong", "Error: the key is wrong."),
    ],
)
def test_an_error_becomes_one_sentence_before_what_happens_next_is_added(raw: str, expected: str) -> None:
    assert run_lifecycle.sentence(raw) == expected


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("queued", "Waiting to start"),
        ("cancelled", "Cancelled"),
        ("delivered", "Kept here The archive is kept here only. Add a destination to have a copy elsewhere."),
    ],
)
def test_the_state_line_never_repeats_the_badge(
    db: Database, signed_in: FlaskClient, alice_user: int, state: str, shown: str
) -> None:
    with db.session(write=True) as session:
        run = ExportRun(user_id=alice_user, trigger="manual", state=state, created_at=utcnow())
        if state != "queued":
            run.finished_at = utcnow()
        session.add(run)
        session.flush()
        run_id = run.id
    assert _state_line(signed_in.get(f"/runs/{run_id}").get_data(as_text=True)) == shown
