"""Staff sign in with a second factor, are signed out when idle, and never open a user's page or API.

The codes are real: pyotp computes them from the secret the enrolment page shows,
as the staff member's authenticator app would.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from jobs import api_tokens
from store import AuditEvent, RecoveryCode, User, get_db
from store.base import utcnow
from tests.web.conftest import ADMIN, csrf_token, sign_in
from tests.web.staff_helpers import (
    STAFF_PASSWORD,
    admin_form,
    enrol,
    make_staff,
    next_code,
    recovery_codes_on_page,
    sign_ins,
    submit_code,
)
from web import staff_auth
from web.staff_access import STAFF_VERIFIED_KEY

SUPPORT = "support@lifeboat.example"


def _user(app: Flask, user_id: int) -> User:
    with get_db(app).session() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def test_enrolment_shows_a_qr_code_and_the_key_then_ten_recovery_codes_once(app: Flask, admin: int) -> None:
    client = app.test_client()
    assert sign_in(client, ADMIN, STAFF_PASSWORD).headers["Location"] == "/staff/sign-in"
    page = client.get("/staff/sign-in").get_data(as_text=True)
    assert 'role="img" aria-label="QR code for your authenticator app"' in page and "<svg" in page
    secret, codes = enrol(app.test_client(), ADMIN)
    user = _user(app, admin)
    assert user.totp_confirmed_at is not None
    assert user.totp_secret and secret not in user.totp_secret  # stored encrypted
    with get_db(app).session() as session:
        stored = session.scalars(select(RecoveryCode.code_sha256).where(RecoveryCode.user_id == admin)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert [(e.outcome, json.loads(e.detail)["method"]) for e in sign_ins(app, ADMIN)] == [("ok", "totp enrolment")]


def test_the_same_key_is_shown_on_every_visit_until_it_is_confirmed(app: Flask, admin: int) -> None:
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    first = re.search(r'id="totp-secret"[^>]*>(\w+)<', client.get("/staff/sign-in").get_data(as_text=True))
    again = re.search(r'id="totp-secret"[^>]*>(\w+)<', client.get("/staff/sign-in").get_data(as_text=True))
    assert first and again and first.group(1) == again.group(1)


def test_a_verified_staff_member_reaches_the_console_and_the_recovery_codes_are_never_shown_again(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _secret, _codes = enrolled_admin
    assert client.get("/staff/sign-in").headers["Location"] == "/support"
    assert client.get("/").headers["Location"] == "/support"
    assert client.get("/admin/staff").status_code == 200
    fresh = app.test_client()
    sign_in(fresh, ADMIN, STAFF_PASSWORD)
    page = fresh.get("/staff/sign-in").get_data(as_text=True)
    assert "totp-secret" not in page and not recovery_codes_on_page(page)


def test_a_password_alone_opens_nothing_for_staff(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client = app.test_client()
    assert sign_in(client, ADMIN, STAFF_PASSWORD).headers["Location"] == "/staff/sign-in"
    assert client.get("/admin/staff").headers["Location"].startswith("/staff/sign-in")
    assert client.get("/").headers["Location"] == "/staff/sign-in"


def test_a_wrong_code_is_refused_and_audited_and_the_right_one_then_works(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    _, secret, _ = enrolled_admin
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    wrong = "000000" if next_code(secret) != "000000" else "111111"
    refused = submit_code(client, wrong)
    assert refused.status_code == 200 and "That code is not right" in refused.get_data(as_text=True)
    assert client.get("/admin/staff").status_code == 302
    assert submit_code(client, next_code(secret)).headers["Location"] == "/support"
    assert client.get("/admin/staff").status_code == 200
    rows = sign_ins(app, ADMIN)
    assert [(e.outcome, json.loads(e.detail).get("why")) for e in rows] == [
        ("ok", None),
        ("refused", "wrong code"),
        ("ok", None),
    ]
    assert all(e.address == "127.0.0.1" and e.actor_role == "admin" for e in rows)


def test_a_code_already_used_is_refused_as_a_replay(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    _, secret, _ = enrolled_admin
    code = next_code(secret)
    first, second = app.test_client(), app.test_client()
    sign_in(first, ADMIN, STAFF_PASSWORD)
    assert submit_code(first, code).headers["Location"] == "/support"
    sign_in(second, ADMIN, STAFF_PASSWORD)
    replay = submit_code(second, code)
    assert replay.status_code == 200 and "was just used" in replay.get_data(as_text=True)
    assert json.loads(sign_ins(app, ADMIN)[-1].detail)["why"] == "code already used"


def test_a_recovery_code_signs_in_once(app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]) -> None:
    _, _, codes = enrolled_admin
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    assert submit_code(client, codes[3].upper()).headers["Location"] == "/support"
    with client.session_transaction() as session:
        assert any("9 left" in message for _, message in session["_flashes"])
    again = app.test_client()
    sign_in(again, ADMIN, STAFF_PASSWORD)
    refused = submit_code(again, codes[3])
    assert refused.status_code == 200 and "already used" in refused.get_data(as_text=True)
    assert [json.loads(e.detail).get("method") for e in sign_ins(app, ADMIN)][-2:] == ["recovery code"] * 2


def test_second_factor_attempts_are_throttled(app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]) -> None:
    app.config["STAFF_CODE_LIMITS"] = "2/minute"
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    answers = [submit_code(client, "000001") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "Too many failed sign-in attempts" in answers[2].get_data(as_text=True)


def test_a_wrong_staff_password_is_audited(app: Flask, admin: int) -> None:
    assert sign_in(app.test_client(), ADMIN, "not the password").status_code == 200
    [row] = sign_ins(app, ADMIN)
    assert row.outcome == "refused" and json.loads(row.detail) == {"step": "password", "why": "wrong password"}


def test_staff_are_signed_out_after_the_idle_minutes(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, _ = enrolled_admin
    app.config["STAFF_IDLE_MINUTES"] = 15
    start = utcnow()
    monkeypatch.setattr(staff_auth, "utcnow", lambda: start + dt.timedelta(minutes=14))
    assert client.get("/admin/staff").status_code == 200  # active: the clock restarts
    monkeypatch.setattr(staff_auth, "utcnow", lambda: start + dt.timedelta(minutes=28))
    assert client.get("/admin/staff").status_code == 200
    monkeypatch.setattr(staff_auth, "utcnow", lambda: start + dt.timedelta(minutes=44))
    timed_out = client.get("/admin/staff")
    assert timed_out.headers["Location"] == "/login?next=/admin/staff"  # back to this page after signing in
    assert "15 minutes without activity" in client.get("/login").get_data(as_text=True)
    with client.session_transaction() as session:
        assert STAFF_VERIFIED_KEY not in session
    assert client.get("/admin/staff").headers["Location"].startswith("/login")


def _verified_staff_client(app: Flask, user_id: int) -> FlaskClient:
    """A staff session past the second factor (set directly: what it opens is the point here)."""
    client = app.test_client()
    assert sign_in(client, _user(app, user_id).email, STAFF_PASSWORD).status_code == 302
    with client.session_transaction() as session:
        session[STAFF_VERIFIED_KEY] = True
    return client


def _filled(rule: str) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", lambda m: "1" if "int:" in m.group(0) else "x1", rule)


def test_a_staff_session_gets_403_on_every_user_page(app: Flask) -> None:
    """Every route but the staff paths (console, admin, sign-in, static) and the API, walked from the url map."""
    client = _verified_staff_client(app, make_staff(app, SUPPORT))
    token = csrf_token(client, "/login")
    walked = []
    for rule in app.url_map.iter_rules():
        path = _filled(rule.rule)
        if path == "/" or path.startswith("/api/") or path.startswith(staff_auth.STAFF_PATHS):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
            assert response.status_code == 403, f"{method} {path}: {response.status_code}"
            walked.append(path)
    assert {"/history", "/archives", "/settings", "/d/x1", "/archives/x1/download", "/export"} <= set(walked)
    assert "support sees what happened, never content" in client.get("/history").get_data(as_text=True)


def test_a_staff_token_or_session_gets_403_staff_forbidden_on_every_user_api_endpoint(app: Flask) -> None:
    staff_id = make_staff(app, SUPPORT)
    with get_db(app).session(write=True) as session:
        secret = api_tokens.create_token(session, staff_id, "staff", days=30, now=utcnow()).secret
    browser = _verified_staff_client(app, staff_id)
    page_csrf = csrf_token(browser, "/login")
    plain = app.test_client()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.startswith(("/api/v1/support", "/api/v1/openapi")):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
            path = _filled(rule.rule)
            for response in (
                plain.open(path, method=method, headers={"Authorization": f"Bearer {secret}"}, json=body),
                browser.open(path, method=method, headers={"X-CSRFToken": page_csrf}, json=body),
            ):
                assert response.status_code == 403, f"{method} {path}"
                assert response.get_json()["code"] == "staff_forbidden"


def test_regular_users_get_403_on_the_admin_page_and_the_signed_out_are_sent_to_sign_in(
    app: Flask, signed_in: FlaskClient
) -> None:
    assert signed_in.get("/admin/staff").status_code == 403
    token = csrf_token(signed_in, "/settings")
    assert signed_in.post("/admin/staff", data={"csrf_token": token, "email": "x@example.com"}).status_code == 403
    assert signed_in.get("/staff/sign-in").status_code == 403
    assert app.test_client().get("/admin/staff").headers["Location"].startswith("/login")


def test_support_staff_get_403_on_the_admin_page(app: Flask) -> None:
    assert _verified_staff_client(app, make_staff(app, SUPPORT)).get("/admin/staff").status_code == 403


def test_without_a_mail_server_the_admin_is_shown_the_one_time_link_once_and_told_to_pass_it_on_privately(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, _ = enrolled_admin
    assert not app.config.get("SMTP_HOST")
    sent: list[object] = []
    monkeypatch.setattr("web.admin_pages.account_mail.send", lambda _config, mail: sent.append(mail))
    form = {**admin_form(client), "email": "helper@example.com", "role": "support", "reason": "joins support"}
    answer = client.post("/admin/staff", data=form)
    page = re.sub(r"\s+", " ", answer.get_data(as_text=True))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert sent == []  # nothing pretends to go out
    assert "on its way" not in page and "Email is not set up on this server" in page
    link = re.search(r'<code class="token-value" id="handover-link">([^<]+)</code>', page)
    assert link is not None and "/reset/" in link.group(1)
    assert "Give them this link privately" in page and "It works once and expires in 60 minutes" in page
    assert re.search(r"<td[^>]*>helper@example.com</td>", page)  # listed on the same page
    later = client.get("/admin/staff").get_data(as_text=True)
    assert link.group(1) not in later and "Created support account" not in later  # not kept in a flash
    token = link.group(1).rsplit("/reset/", 1)[1]
    assert client.get(f"/reset/{token}").status_code == 200  # the link works


def test_an_admin_deactivates_a_staff_account_and_its_sessions_end(
    app: Flask, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    helper_id = make_staff(app, SUPPORT)
    helper = _verified_staff_client(app, helper_id)
    page = client.get("/admin/staff").get_data(as_text=True)
    key = re.search(rf'name="d{helper_id}-request_key" type="hidden" value="([^"]+)"', page)
    assert key, page
    data = {
        "csrf_token": csrf_token(client, "/admin/staff"),
        f"d{helper_id}-request_key": key.group(1),
        f"d{helper_id}-reason": "left the team",
    }
    assert client.post(f"/admin/staff/{helper_id}/deactivate", data=data).status_code == 302
    assert not _user(app, helper_id).is_active
    assert helper.get("/admin/staff").headers["Location"].startswith("/login")
    assert sign_in(app.test_client(), SUPPORT, STAFF_PASSWORD).status_code == 200
    assert json.loads(sign_ins(app, SUPPORT)[-1].detail)["why"] == "account deactivated"
    with get_db(app).session() as session:
        [row] = session.scalars(select(AuditEvent).where(AuditEvent.action == "deactivate_staff")).all()
        assert (row.reason, row.target_user_id, row.actor_email) == ("left the team", helper_id, ADMIN)


def test_an_admin_cannot_deactivate_themselves(
    app: Flask, admin: int, enrolled_admin: tuple[FlaskClient, str, list[str]]
) -> None:
    client, _, _ = enrolled_admin
    page = client.get("/admin/staff").get_data(as_text=True)
    assert "active (you)" in page and f'action="/admin/staff/{admin}/deactivate"' not in page
    data = {"csrf_token": csrf_token(client, "/admin/staff"), f"d{admin}-request_key": "k", f"d{admin}-reason": "x"}
    client.post(f"/admin/staff/{admin}/deactivate", data=data)
    assert _user(app, admin).is_active
    assert "cannot deactivate your own account" in client.get("/admin/staff").get_data(as_text=True)


def test_the_totp_library_agrees_with_the_codes_the_page_accepts(app: Flask, admin: int) -> None:
    """A control for the tests above: a code for a time far from now is refused (the window is one step)."""
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    page = client.get("/staff/sign-in").get_data(as_text=True)
    secret = re.search(r'id="totp-secret"[^>]*>(\w+)<', page)
    assert secret
    stale = pyotp.TOTP(secret.group(1)).at(utcnow() - dt.timedelta(minutes=5))
    assert "That code is not right" in submit_code(client, stale).get_data(as_text=True)


def test_a_staff_sign_in_on_a_server_without_encryption_keys_says_so_instead_of_a_500(app: Flask, admin: int) -> None:
    app.config["ENCRYPTION_KEYS"] = []
    client = app.test_client()
    sign_in(client, ADMIN, STAFF_PASSWORD)
    page = client.get("/staff/sign-in")
    assert page.status_code == 503 and "LIFEBOAT_ENCRYPTION_KEYS" in page.get_data(as_text=True)
