"""The admin pages hold reasons and request keys to the audit log's rule: clean text, or a 400 that says why.

Found trying the console on PostgreSQL (trial 14): a reason with NUL, or a
request key longer than the column's 128 characters, answered 500 on
/admin/staff, /admin/staff/tokens and their row buttons, while SQLite stored
them as given (control characters and all). Here they are stored as every
support action stores its reason (NUL as U+FFFD, control characters dropped),
or refused before anything is made.
"""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from store import ApiToken, AuditEvent, User, get_db
from tests.web.conftest import ADMIN, csrf_token
from tests.web.staff_helpers import make_staff

HELPER = "helper@lifeboat.example"


def _key(client: FlaskClient, page_path: str, action: str, prefix: str = "") -> str:
    page = client.get(page_path).get_data(as_text=True)
    form = page[page.index(f'action="{action}"') :]
    key = re.search(rf'name="{prefix}request_key" type="hidden" value="([^"]+)"', form)
    assert key, form[:2000]
    return key.group(1)


def _reasons(app: Flask, action: str) -> list[str]:
    """The reasons the signed-in admin's `action` rows hold (the fixtures' own accounts are made by the operator)."""
    with get_db(app).session() as session:
        query = select(AuditEvent.reason).where(AuditEvent.action == action, AuditEvent.actor_email == ADMIN)
        return list(session.scalars(query))


def test_a_new_staff_members_reason_is_stored_without_nul_or_control_characters(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    form = {
        "csrf_token": csrf_token(client, "/admin/staff"),
        "request_key": _key(client, "/admin/staff", "/admin/staff"),
        "email": HELPER,
        "role": "support",
        "reason": "joins\x00 support\x1b on\u202e nights\x07",
    }
    assert client.post("/admin/staff", data=form).status_code in (200, 302)
    assert _reasons(app, "create_staff") == ["joins\ufffd support on nights"]


def test_an_over_long_or_unprintable_request_key_makes_no_account_and_says_why(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    base = {"csrf_token": csrf_token(client, "/admin/staff"), "email": HELPER, "role": "support", "reason": "r"}
    for key in ("k" * 129, "k\x00", "k\n"):
        answer = client.post("/admin/staff", data={**base, "request_key": key})
        assert answer.status_code == 400, key
        assert "This form could not be used as sent (The request key must be 1 to 128 printable characters.)" in (
            answer.get_data(as_text=True)
        )
    with get_db(app).session() as session:
        assert session.scalar(select(User).where(User.email == HELPER)) is None
    assert _reasons(app, "create_staff") == []


def test_a_reason_of_only_control_characters_or_over_500_is_refused_beside_the_box(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    for reason, words in (("\x01\x02\x1b", "Give a reason"), ("x" * 501, "The reason is 501 characters long")):
        form = {
            "csrf_token": csrf_token(client, "/admin/staff"),
            "request_key": _key(client, "/admin/staff", "/admin/staff"),
            "email": HELPER,
            "role": "support",
            "reason": reason,
        }
        answer = client.post("/admin/staff", data=form)
        assert answer.status_code == 400 and words in answer.get_data(as_text=True)
    assert _reasons(app, "create_staff") == []


def test_deactivating_with_a_nul_in_the_reason_works_and_stores_it_clean(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    helper_id = make_staff(app, HELPER)
    action = f"/admin/staff/{helper_id}/deactivate"
    prefix = f"d{helper_id}-"
    data = {
        "csrf_token": csrf_token(client, "/admin/staff"),
        f"{prefix}request_key": _key(client, "/admin/staff", action, prefix),
        f"{prefix}reason": "left\x00 the team",
    }
    assert client.post(action, data=data).status_code == 302
    assert _reasons(app, "deactivate_staff") == ["left\ufffd the team"]


def _token_form(client: FlaskClient, staff_id: int, request_key: str, reason: str) -> dict[str, str]:
    """The admin's "make a staff token" form for `staff_id`, with this request key and reason."""
    return {
        "csrf_token": csrf_token(client, "/admin/staff/tokens"),
        "request_key": request_key,
        "staff_id": str(staff_id),
        "name": "outage script",
        "lifetime": "30",
        "reason": reason,
    }


def test_a_staff_token_with_a_nul_reason_is_made_and_an_over_long_revoke_reason_is_named_not_called_missing(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    helper_id = make_staff(app, HELPER)
    key = _key(client, "/admin/staff/tokens", "/admin/staff/tokens")
    form = _token_form(client, helper_id, key, "runbook\x00 automation")
    assert client.post("/admin/staff/tokens", data=form).status_code == 200
    assert _reasons(app, "staff_token.create") == ["runbook\ufffd automation"]

    with get_db(app).session() as session:
        token_id = session.scalars(select(ApiToken.id).where(ApiToken.user_id == helper_id)).one()
    action = f"/admin/staff/tokens/{token_id}/revoke"
    prefix = f"r{token_id}-"
    data = {
        "csrf_token": csrf_token(client, "/admin/staff/tokens"),
        f"{prefix}request_key": _key(client, "/admin/staff/tokens", action, prefix),
        f"{prefix}reason": "y" * 600,
    }
    assert client.post(action, data=data).status_code == 302
    page = client.get("/admin/staff/tokens").get_data(as_text=True)
    assert "The reason is 600 characters long; keep it to 500." in page
    assert _reasons(app, "staff_token.revoke") == []


def test_a_token_form_with_a_bad_request_key_says_so_and_makes_nothing(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    helper_id = make_staff(app, HELPER)
    answer = client.post("/admin/staff/tokens", data=_token_form(client, helper_id, "k" * 129, "runbook"))
    assert answer.status_code == 400 and "This form could not be used as sent" in answer.get_data(as_text=True)
    assert _reasons(app, "staff_token.create") == []
