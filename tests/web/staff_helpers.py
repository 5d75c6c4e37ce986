"""Staff accounts for tests: made through the same service as `users create`, signed in through the real pages."""

from __future__ import annotations

import re
import time

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from jobs.audit import Actor
from jobs.staff_accounts import create_staff
from store import AuditEvent, get_db
from store.base import utcnow
from tests.web.conftest import csrf_token, sign_in

STAFF_PASSWORD = "a staff member's long password"
OPERATOR = Actor(user_id=None, email="cli:test", role="operator")


def make_staff(app: Flask, email: str, role: str = "support") -> int:
    with get_db(app).session(write=True) as session:
        user = create_staff(session, OPERATOR, email, role, password=STAFF_PASSWORD, reason="test", now=utcnow())
        return user.id


def secret_on_page(page: str) -> str:
    match = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', page)
    assert match, page
    return match.group(1)


def recovery_codes_on_page(page: str) -> list[str]:
    return re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", page)


def enrol(client: FlaskClient, email: str) -> tuple[str, list[str]]:
    """Sign in with the password, enrol the authenticator with a real code: its secret and the recovery codes."""
    response = sign_in(client, email, STAFF_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/staff/sign-in"
    page = client.get("/staff/sign-in").get_data(as_text=True)
    secret = secret_on_page(page)
    code = pyotp.TOTP(secret).now()
    done = client.post("/staff/sign-in", data={"code": code, "csrf_token": csrf_token(client, "/staff/sign-in")})
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = recovery_codes_on_page(done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def next_code(secret: str) -> str:
    """The code of the next time step: accepted (clocks drift) and never the one enrolment just used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def submit_code(client: FlaskClient, code: str) -> TestResponse:
    return client.post("/staff/sign-in", data={"code": code, "csrf_token": csrf_token(client, "/staff/sign-in")})


def sign_ins(app: Flask, email: str) -> list[AuditEvent]:
    with get_db(app).session() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "sign_in", AuditEvent.actor_email == email)
        )
        found = list(rows)
        session.expunge_all()
        return found


def admin_form(client: FlaskClient) -> dict[str, str]:
    """The /admin/staff "Add a staff member" form's hidden fields (CSRF token, request key), ready to fill in."""
    page = client.get("/admin/staff").get_data(as_text=True)
    form = page[page.index('action="/admin/staff"') :]
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', form)
    assert key
    return {"csrf_token": csrf_token(client, "/admin/staff"), "request_key": key.group(1)}
