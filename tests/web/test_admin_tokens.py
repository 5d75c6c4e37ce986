"""An admin makes a staff API token on a page (shown once, audited); it opens the support API until revoked."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from store import AuditEvent, get_db
from tests.web.conftest import csrf_token
from tests.web.staff_helpers import make_staff

HELPER = "helper@lifeboat.example"


def _form(client: FlaskClient, action: str, prefix: str = "") -> dict[str, str]:
    page = client.get("/admin/staff/tokens").get_data(as_text=True)
    form = page[page.index(f'action="{action}"') :]
    key = re.search(rf'name="{prefix}request_key" type="hidden" value="([^"]+)"', form)
    assert key, form[:2000]
    return {"csrf_token": csrf_token(client, "/admin/staff/tokens"), f"{prefix}request_key": key.group(1)}


def _audit(app: Flask) -> list[tuple[str, str | None, str]]:
    with get_db(app).session() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("staff_token.%")).order_by(AuditEvent.id)
        )
        return [(r.action, r.target_email, r.reason) for r in rows]


def test_an_admin_makes_a_staff_token_shown_once_that_opens_the_support_api_and_then_revokes_it(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    helper_id = make_staff(app, HELPER)
    form = {**_form(client, "/admin/staff/tokens"), "staff_id": str(helper_id), "name": "outage script"}
    form |= {"lifetime": "30", "reason": "runbook automation"}
    made = client.post("/admin/staff/tokens", data=form)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-token">([^<]+)<', made.get_data(as_text=True))
    assert secret, made.get_data(as_text=True)
    assert '<td data-label="What it is for">outage script</td>' in made.get_data(as_text=True)  # listed at once
    again = client.post("/admin/staff/tokens", data=form)  # the double click makes no second token
    assert again.status_code == 302 and secret.group(1) not in client.get("/admin/staff/tokens").get_data(as_text=True)

    api = app.test_client()
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    assert api.get("/api/v1/support/queue", headers=bearer).status_code == 200
    assert api.get("/api/v1/me", headers=bearer).status_code == 403  # a staff token never opens user data

    page = client.get("/admin/staff/tokens").get_data(as_text=True)
    assert "outage script" in page and HELPER in page
    token_id = re.search(r'action="/admin/staff/tokens/([^/"]+)/revoke"', page)
    assert token_id
    prefix = f"r{token_id.group(1)}-"
    revoke = {**_form(client, f"/admin/staff/tokens/{token_id.group(1)}/revoke", prefix), f"{prefix}reason": "done"}
    assert client.post(f"/admin/staff/tokens/{token_id.group(1)}/revoke", data=revoke).status_code == 302
    assert api.get("/api/v1/support/queue", headers=bearer).status_code == 401
    assert _audit(app) == [
        ("staff_token.create", HELPER, "runbook automation"),
        ("staff_token.revoke", HELPER, "done"),
    ]


def test_a_token_needs_a_reason_and_a_staff_member_and_nothing_is_made_without_them(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    helper_id = make_staff(app, HELPER)
    base = {**_form(client, "/admin/staff/tokens"), "name": "x", "lifetime": "30"}
    no_reason = client.post("/admin/staff/tokens", data={**base, "staff_id": str(helper_id), "reason": ""})
    assert no_reason.status_code == 400 and "Say why" in no_reason.get_data(as_text=True)
    not_staff = client.post("/admin/staff/tokens", data={**base, "staff_id": "987654", "reason": "r"})
    assert not_staff.status_code == 400
    assert _audit(app) == []
