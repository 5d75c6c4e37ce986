"""A staff member sent to sign in from a console page lands on that page once the second factor is done.

Found in trial 14: a link to one user's console page (from a ticket, or the
page an idle sign-out left) landed on the queue after the code, and the user
had to be found again. Only console and admin pages are kept as the
destination: a staff session opens nothing else.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient

from store.base import utcnow
from tests.web.conftest import ADMIN, sign_in
from tests.web.staff_helpers import STAFF_PASSWORD, submit_code
from web import staff_auth


def test_the_page_asked_for_before_signing_in_opens_after_the_code(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    _, _, codes = enrolled_admin
    client = app.test_client()
    asked = client.get("/support/audit?target=alice")
    assert asked.headers["Location"] == "/login?next=/support/audit?target%3Dalice"
    assert sign_in(client, ADMIN, STAFF_PASSWORD, query="?next=/support/audit?target%3Dalice").status_code == 302
    assert submit_code(client, codes[0]).headers["Location"] == "/support/audit?target=alice"


def test_a_console_page_opened_between_password_and_code_is_where_the_code_leads(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    _, _, codes = enrolled_admin
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    sent = client.get("/admin/staff/tokens")
    assert sent.headers["Location"].startswith("/staff/sign-in?next=/admin/staff/tokens")
    client.get(sent.headers["Location"])
    assert submit_code(client, codes[1]).headers["Location"] == "/admin/staff/tokens"


@pytest.mark.parametrize("target", ["/history", "//evil.example/support", "https://evil.example/support"])
def test_a_next_that_is_not_a_console_page_leads_to_the_queue(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], target: str
) -> None:
    _, _, codes = enrolled_admin
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD, query=f"?next={target}")
    assert submit_code(client, codes[2]).headers["Location"] == "/support"


def test_after_an_idle_sign_out_signing_in_again_returns_to_the_same_page(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, codes = enrolled_admin
    start = utcnow()
    monkeypatch.setattr(
        staff_auth, "utcnow", lambda: start + dt.timedelta(minutes=app.config["STAFF_IDLE_MINUTES"] + 1)
    )
    timed_out = client.get("/support/find?q=alice")
    assert timed_out.headers["Location"] == "/login?next=/support/find?q%3Dalice"
    monkeypatch.undo()
    sign_in(client, ADMIN, STAFF_PASSWORD, query="?next=/support/find?q%3Dalice")
    assert submit_code(client, codes[3]).headers["Location"] == "/support/find?q=alice"
