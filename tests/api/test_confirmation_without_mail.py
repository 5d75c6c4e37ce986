"""The API without a mail server (no LIFEBOAT_SMTP_HOST): a waiting address's link is mailed to nobody, and said so.

Trial 9 found the CLI telling "a link went to …" and storing "the link we emailed on …" with no mail
server; the API's status words and its resend answer come from the same rows.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask

from store import Database, Destination
from store.base import utcnow
from tests.api.conftest import Call


def test_without_a_mail_server_the_status_and_a_resend_say_no_link_was_emailed(
    app: Flask, db: Database, as_alice: Call
) -> None:
    assert not app.config.get("SMTP_HOST")
    added = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "friend@example.org"}).get_json()
    assert added["status"] == "waiting"
    assert added["status_message"].startswith(
        "Waiting for confirmation: no link was emailed to friend@example.org, because this Lifeboat has no mail server"
    )
    with db.session(write=True) as session:
        row = session.get(Destination, added["id"])
        assert row is not None
        row.confirm_sent_at = utcnow() - dt.timedelta(minutes=5)  # past the minute between two links
    again = as_alice("post", f"/api/v1/destinations/{added['id']}/confirmation")
    assert again.status_code == 200
    body = again.get_json()
    assert (body["sent"], body["message"]) == (
        False,
        "No link was emailed: this Lifeboat has no mail server (LIFEBOAT_SMTP_HOST). Ask its operator for the link.",
    )
