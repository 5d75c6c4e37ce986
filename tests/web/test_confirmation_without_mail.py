"""Without a mail server (no LIFEBOAT_SMTP_HOST) an added address's link is made but mailed to nobody: said so.

The trial (CLI, the page alike): "We emailed a link" and a status "the link we emailed on …" while the
same output warned that no email was sent; the recipient's owner then waited for a message that never came.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

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
