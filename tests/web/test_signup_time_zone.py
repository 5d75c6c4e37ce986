"""A new web account starts in the browser's time zone (user trial 7: every one started in UTC).

The sign-up form carries a hidden `timezone` field that static/timezone.js
fills from `Intl.DateTimeFormat().resolvedOptions().timeZone`; the server keeps
it only if it is a zone a schedule accepts, and UTC otherwise (without
JavaScript the field is empty). tests/browser/test_signup_time_zone.py runs the
script in Chromium.
"""

from __future__ import annotations

import pytest
from flask import Flask

from store import get_db
from store.accounts import find_user
from tests.web.test_accounts import sign_up


def zone_of(app: Flask, email: str) -> str:
    with get_db(app).session() as session:
        user = find_user(session, email)
        assert user is not None
        return user.timezone


def test_the_sign_up_page_carries_the_hidden_field_and_its_script(app: Flask) -> None:
    page = app.test_client().get("/signup").get_data(as_text=True)
    assert '<input id="timezone" name="timezone" type="hidden" value="UTC">' in page  # without JS: UTC
    assert "/static/timezone.js" in page


def test_a_zone_the_browser_sent_becomes_the_accounts(app: Flask) -> None:
    sign_up(app.test_client(), "berlin@example.com", timezone="Europe/Berlin")
    assert zone_of(app, "berlin@example.com") == "Europe/Berlin"


@pytest.mark.parametrize(
    "sent",
    ["", "Mars/Olympus_Mons", "../../etc/passwd", "europe/berlin", "Europe/Berlin\u202e", "x" * 5000, "localtime"],
)
def test_a_missing_or_unknown_zone_means_utc_and_no_error(app: Flask, sent: str) -> None:
    response = sign_up(app.test_client(), "somewhere@example.com", timezone=sent)
    assert response.status_code == 200 and "Create an account" not in response.get_data(as_text=True)
    assert zone_of(app, "somewhere@example.com") == "UTC"


def test_without_the_field_at_all_the_account_starts_in_utc(app: Flask) -> None:
    sign_up(app.test_client(), "nojs@example.com")
    assert zone_of(app, "nojs@example.com") == "UTC"
