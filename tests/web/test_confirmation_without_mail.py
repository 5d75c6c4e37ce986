"""Without a mail server (no LIFEBOAT_SMTP_HOST) an added address's link is made but mailed to nobody: said so.

The trial (CLI, the page alike): "We emailed a link" and a status "the link we emailed on …" while the
same output warned that no email was sent; the recipient's owner then waited for a message that never came.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from store import Destination, get_db
from store.base import utcnow
from tests.web.conftest import csrf_token

PAGE = "/settings/destinations"


def test_adding_an_address_without_a_mail_server_says_no_link_was_emailed_on_the_page_and_in_its_status(
    app: Flask, signed_in: FlaskClient
) -> None:
    assert not app.config.get("SMTP_HOST")
    token = csrf_token(signed_in, PAGE)
    added = signed_in.post(PAGE + "/email", data={"to": "friend@example.net", "csrf_token": token})
    assert added.status_code == 302
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert "We emailed a link" not in page and "the link we emailed" not in page
    assert "this Lifeboat has no mail server, so no link was emailed to it" in page  # the message after saving
    assert "no link was emailed to friend@example.net, because this Lifeboat has no mail server" in page  # status


def test_send_the_link_again_without_a_mail_server_says_no_link_was_emailed(app: Flask, signed_in: FlaskClient) -> None:
    token = csrf_token(signed_in, PAGE)
    signed_in.post(PAGE + "/email", data={"to": "friend@example.net", "csrf_token": token})
    with get_db(app).session(write=True) as session:
        row = session.scalars(select(Destination).where(Destination.kind == "email")).one()
        row.confirm_sent_at = utcnow() - dt.timedelta(minutes=5)  # past the minute between two links
        destination_id = row.id
    again = signed_in.post(
        f"{PAGE}/{destination_id}/confirmation", data={"csrf_token": csrf_token(signed_in, PAGE)}, follow_redirects=True
    )
    page = again.get_data(as_text=True)
    assert "We emailed a new link" not in page
    assert "No link was emailed to friend@example.net: this Lifeboat has no mail server" in page
