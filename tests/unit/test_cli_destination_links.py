"""`lifeboat destination add-email/edit`: where the mailed confirmation link points, and times as the API writes them.

The trial: with LIFEBOAT_BASE_URL unset the CLI mailed links to http://127.0.0.1:5000
(BASE_URL's default) while the server listened elsewhere, without a word; and it
printed `confirmation_sent_at` as "2026-12-07 19:20:05+00:00", not ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from jobs.destination_confirmation import PATH
from tests.web.conftest import csrf_token

NOTE = "Note: LIFEBOAT_BASE_URL is not set, so the link points at the default address http://127.0.0.1:5000; "


@pytest.fixture
def alice(runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("LIFEBOAT_BASE_URL", raising=False)
    monkeypatch.delenv("LIFEBOAT_BASE_URL_FILE", raising=False)
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    return "alice@example.com"


def test_adding_another_address_with_base_url_unset_warns_that_its_link_points_at_the_default(
    runner: FlaskCliRunner, alice: str
) -> None:
    result = runner.invoke(args=["destination", "add-email", alice, "--to", "friend@example.net", "--json"])
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("Note:")] == [
        NOTE + "set LIFEBOAT_BASE_URL to the address people reach Lifeboat at, then send the link again."
    ]
    shown = json.loads(result.stdout)
    assert shown["status"] == "waiting"
    sent = dt.datetime.fromisoformat(shown["confirmation_sent_at"])
    assert shown["confirmation_sent_at"] == sent.isoformat() and "T" in shown["confirmation_sent_at"]


def test_no_warning_when_base_url_is_set_or_no_link_is_mailed(app: Flask, runner: FlaskCliRunner, alice: str) -> None:
    own = runner.invoke(args=["destination", "add-email", alice])  # the account's own address: no link
    assert own.exit_code == 0 and "Note:" not in own.output
    app.config["BASE_URL"] = "https://lifeboat.example.org"
    other = runner.invoke(args=["destination", "add-email", alice, "--to", "friend@example.net"])
    assert other.exit_code == 0 and "Note:" not in other.output, other.output


def test_editing_an_email_destination_to_a_new_address_warns_of_the_default_address(
    runner: FlaskCliRunner, alice: str
) -> None:
    added = json.loads(runner.invoke(args=["destination", "add-email", alice, "--json"]).stdout)
    edited = runner.invoke(
        args=["destination", "edit", alice, str(added["id"]), "--to", "friend@example.net", "--json"]
    )
    # It is tested after (no mail server here, so that test fails): the edit and its link came first.
    assert '"status": "waiting"' in edited.stdout and NOTE in edited.stderr, edited.output


def test_without_a_mail_server_add_email_says_no_link_was_sent_prints_it_and_stores_that_it_was_not_sent(
    app: Flask, runner: FlaskCliRunner, alice: str
) -> None:
    """A user trial: no LIFEBOAT_SMTP_HOST, yet "a link went to …" and a status "the link we emailed on …"."""
    assert not app.config.get("SMTP_HOST")
    result = runner.invoke(args=["destination", "add-email", alice, "--to", "friend@example.net"])
    assert result.exit_code == 0, result.output
    assert "a link went to" not in result.output and "we emailed" not in result.output
    said = next(line for line in result.stderr.splitlines() if line.startswith("No mail server"))
    assert said.startswith(
        "No mail server (LIFEBOAT_SMTP_HOST): no link was sent to friend@example.net, nor a notice to "
        "alice@example.com; nothing is sent there until someone there follows this link, so give it to them: "
        "http://127.0.0.1:5000" + PATH
    )
    (shown,) = json.loads(runner.invoke(args=["destination", "list", alice, "--json"]).stdout)
    assert shown["status"] == "waiting"
    assert shown["status_message"].startswith(
        "Waiting for confirmation: no link was emailed to friend@example.net, because this Lifeboat has no mail "
        "server (LIFEBOAT_SMTP_HOST)"
    )
    # The link handed over is a real one: following it confirms the address.
    link = said.rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:5000")
    recipient = app.test_client()
    page = recipient.post(link, data={"csrf_token": csrf_token(recipient, link)}).get_data(as_text=True)
    assert "Confirmed" in page
    (after,) = json.loads(runner.invoke(args=["destination", "list", alice, "--json"]).stdout)
    assert after["confirmed"] is True and after["status"] != "waiting"


def test_without_a_mail_server_editing_to_a_new_address_prints_the_link_to_hand_over(
    runner: FlaskCliRunner, alice: str
) -> None:
    added = json.loads(runner.invoke(args=["destination", "add-email", alice, "--json"]).stdout)
    edited = runner.invoke(args=["destination", "edit", alice, str(added["id"]), "--to", "friend@example.net"])
    assert "No mail server (LIFEBOAT_SMTP_HOST): no link was sent to friend@example.net" in edited.stderr
    assert "no link was emailed" in edited.stdout  # the status, as saved
