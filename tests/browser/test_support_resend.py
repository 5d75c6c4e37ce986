"""Issue 14's proof in Chromium: support re-sends a failed S3 delivery after the user fixed the key.

Everything behind the browser is real: alice's export runs through
`jobs.execute` into moto's S3 with a wrong secret key and fails; alice pastes
the right secret key on her Destinations page (the same destination: its id
and history stay); the support
member is made by the operator's CLI and signs in with a password and a TOTP
code; the re-send run is executed by the same executor; the object is read
back from the bucket with boto3. Setup and the run itself happen here in the
test (no worker pool runs under TESTING); the browser does what support and
the user see and click.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import select

import jobs
from delivery.s3 import iam_policy
from jobs import get_context, run_lifecycle
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from store import Archive, AuditEvent, Database, DeliveryAttempt, Destination, ExportRun, RunState, User
from store.base import utcnow
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.servers.s3 import MotoS3
from tests.web.test_downloads import _link

pytestmark = [pytest.mark.browser, pytest.mark.server]

SUPPORT, SUPPORT_PASSWORD = "sam@support.example", "sam's long support passphrase"
LABEL = "My S3 bucket"
WRONG_KEY = "the secret access key does not belong to the access key ID"
RETEST_WHY = "Ticket 7: alice pasted the right secret key"
RESEND_WHY = "Ticket 7: deliver the archive that failed"


@pytest.fixture
def jobs_app(app: Flask) -> Flask:
    """The job context with moto on loopback allowed as an endpoint, and no failure email to send."""
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]
    jobs.init_app(app)
    get_context(app).notify_failure = lambda _user, _run: None
    return app


def _failed_s3_delivery(app: Flask, db: Database, user_id: int, moto: MotoS3, bucket: str, keys: dict[str, str]) -> str:
    """Alice's S3 destination with a wrong secret, and her export through the real executor: delivery fails."""
    settings = {"bucket": bucket, "endpoint_url": moto.url, "path_style": True, "region": "us-east-1"}
    with db.session(write=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        wrong = {**keys, "secret_access_key": "not-the-right-secret"}
        add_destination(session, Registry(dict(app.config)), user, "s3", LABEL, {**settings, **wrong})
        run, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
    assert execute_run(get_context(app), run.id, "test-worker") == RunState.FAILED
    with db.session() as session:
        archive = session.scalar(select(Archive).where(Archive.user_id == user_id))
        assert archive is not None and archive.verified_at is not None
        return archive.sha256


def _support_signs_in_with_totp(app: Flask, page: Page) -> None:
    """The operator makes the account at the command line; support signs in and enrols an authenticator."""
    result = app.test_cli_runner().invoke(
        args=["users", "create", SUPPORT, "--role", "support", "--password-stdin"], input=SUPPORT_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    page.goto("/login")
    page.get_by_label("Email").fill(SUPPORT)
    page.get_by_label("Password").fill(SUPPORT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and continue").click()
    page.get_by_role("link", name="I have saved them: continue to the console").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()


def _user_fixes_the_secret_key(page: Page, secret: str) -> None:
    """Alice opens her bucket's edit form, pastes only the secret key (the key ID kept), saves; the test passes."""
    page.goto("/settings/destinations")
    destination = page.locator(".destinations > li").filter(has_text=LABEL)
    expect(destination).to_contain_text("Not working")
    destination.get_by_text("Change the bucket or replace its keys").click()
    form = page.get_by_role("form", name=f"Change {LABEL}")
    expect(form.get_by_label("Access key ID")).to_have_value("")  # stored keys never come back to the page
    form.get_by_label("Secret access key").fill(secret)
    form.get_by_role("button", name="Save and test").click()
    expect(page.locator("#test-result")).to_contain_text("Test passed: Wrote, read back and deleted a test object")
    expect(page.get_by_text(f"{LABEL}: your changes are saved")).to_be_visible()
    assert secret not in page.content()
    assert serious_violations(page) == []
    screenshot(page, "destination-key-fixed")


def _act(page: Page, form_name: str, reason: str, button: str) -> None:
    form = page.get_by_role("form", name=form_name)
    form.get_by_label("Reason").fill(reason)
    form.get_by_role("button", name=button).click()


def _reason_boxes_overflowing_their_card(page: Page) -> list[str]:
    """The ids of reason boxes on the actions card that are narrower than half of it or stick out of it."""
    return list(
        page.evaluate(
            """() => {
              const card = document.querySelector('#support-actions').getBoundingClientRect();
              return [...document.querySelectorAll('#support-actions textarea')]
                .filter(t => { const r = t.getBoundingClientRect();
                               return r.right > card.right || r.width < card.width / 3; })
                .map(t => t.id);
            }"""
        )
    )


def test_support_resends_the_same_archive_after_the_user_fixed_a_wrong_s3_key_and_the_user_sees_why(
    jobs_app: Flask,
    db: Database,
    alice_user: int,
    page: Page,
    browser: Any,
    live_server: str,
    sign_in_page: Any,
    moto_server: MotoS3,
    s3_bucket: str,
    moto_iam_user: Any,
) -> None:
    keys = moto_iam_user(json.loads(iam_policy(s3_bucket, "lifeboat")))  # moto checks keys from here on
    sha256 = _failed_s3_delivery(jobs_app, db, alice_user, moto_server, s3_bucket, keys)
    with db.session() as session:
        failed_row = session.scalar(select(Destination).where(Destination.user_id == alice_user))
        assert failed_row is not None and failed_row.status == "error"
        destination_id = failed_row.id
    _support_signs_in_with_totp(jobs_app, page)

    # The queue lists alice's failed delivery; her page says what went wrong, in words.
    nav = page.get_by_role("navigation", name="Account")
    expect(nav.get_by_role("link", name="Console")).to_be_visible()
    for user_link in ("History", "Archives", "Settings"):
        expect(nav.get_by_role("link", name=user_link)).to_have_count(0)
    failed = page.locator("tr.queue-item.delivery_failed")
    expect(failed).to_contain_text("alice@example.com")
    failed.get_by_role("link", name="alice@example.com").click()
    expect(page.get_by_role("heading", name="alice@example.com (user")).to_be_visible()
    destination = page.locator(".destinations li").filter(has_text=LABEL)
    expect(destination).to_contain_text(WRONG_KEY)
    expect(page.locator("code.sha256").first).to_have_text(sha256)
    expect(page.locator("#support-resend-archive")).to_contain_text(
        "UTC"
    )  # the page's "Times in UTC", not alice's zone
    # The reason is shown to the user on their History (below): the hint must not promise otherwise.
    expect(page.locator("#support-reason-hint")).to_contain_text("the user reads it (without your name)")
    assert serious_violations(page) == []
    screenshot(page, "support-user-failed-delivery")
    page.set_viewport_size(ViewportSize(width=PHONE["width"], height=PHONE["height"]))
    assert page_width(page) <= PHONE["width"]
    assert _reason_boxes_overflowing_their_card(page) == []
    page.set_viewport_size({"width": 1280, "height": 900})

    # Alice, in her own browser, pastes the right secret key on Settings → Destinations; support then
    # clears the error and tests again.
    alice_context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    try:
        alice_page = sign_in_page(alice_context.new_page())
        _user_fixes_the_secret_key(alice_page, keys["secret_access_key"])
        with db.session() as session:
            row = session.scalar(select(Destination).where(Destination.user_id == alice_user))
            assert row is not None and row.id == destination_id and row.status == "ok"
            assert Registry(dict(jobs_app.config)).decrypt(row) == keys
        _act(page, f"Clear the error on {LABEL} and test it again", RETEST_WHY, "Clear the error and test again")
        expect(page.get_by_role("status")).to_contain_text(f"“{LABEL}” and tested it again: test passed.")

        _act(page, "Re-send an archive", RESEND_WHY, "Re-send the same archive")
        expect(page.get_by_role("status")).to_contain_text("queued (run ")
        with db.session() as session:
            resend = session.scalar(select(ExportRun).where(ExportRun.trigger == "support"))
            assert resend is not None and resend.resend_to == "destinations"
            resend_id = resend.id
        assert execute_run(get_context(jobs_app), resend_id, "test-worker") == RunState.DELIVERED

        with db.session() as session:
            [attempt] = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.run_id == resend_id))
            assert len(list(session.scalars(select(Archive)))) == 1  # the same archive: nothing exported anew
            audit = [
                (row.action, row.outcome, row.reason)
                for row in session.scalars(
                    select(AuditEvent).where(AuditEvent.target_user_id == alice_user).order_by(AuditEvent.id)
                )
                if row.action != "view_user"
            ]
        moto_server.set_auth(False)
        body = moto_server.client().get_object(Bucket=s3_bucket, Key=attempt.object_key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha256
        assert audit == [
            ("destination.retest", "ok", RETEST_WHY),
            ("archive.resend", "ok", RESEND_WHY),
        ]

        # Alice, in the same browser, reads on History what support did and why.
        alice_page.goto("/history")
        actions = alice_page.locator("#support-actions")
        for reason in (RETEST_WHY, RESEND_WHY):
            expect(actions).to_contain_text(reason)
        assert SUPPORT not in alice_page.content()  # what and why, never which staff member
        expect(actions).to_contain_text("Re-sent an existing archive (the same file)")
        expect(actions).to_contain_text("Cleared a destination's error and tested it again")
        screenshot(alice_page, "history-support-actions")
        assert serious_violations(alice_page) == []
    finally:
        alice_context.close()


def test_a_support_member_gets_403_on_every_user_page_file_link_and_api_and_on_admin_pages_and_the_console_fits_a_phone(
    jobs_app: Flask, db: Database, alice_user: int, page: Page
) -> None:
    ctx = get_context(jobs_app)
    with db.session(write=True) as session:
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
    assert execute_run(ctx, run.id, "test-worker") == RunState.DELIVERED
    with db.session() as session:
        archive = session.scalar(select(Archive).where(Archive.user_id == alice_user))
        assert archive is not None
    _link_id, signed_link = _link(jobs_app, db, archive)
    _support_signs_in_with_totp(jobs_app, page)

    page.goto("/")
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()  # `/` is the console for staff
    # The user API takes a browser session with the page's CSRF token: staff's is refused all the same.
    csrf = {"X-CSRFToken": page.locator("input[name=csrf_token]").first.get_attribute("value") or ""}
    for path in (
        "/archives",
        f"/archives/{archive.id}",
        f"/archives/{archive.id}/download",
        signed_link,
        "/history",
        "/settings",
        "/settings/destinations",
        "/api/v1/me",
        "/api/v1/archives",
        "/admin/staff",
        "/admin/staff/tokens",
    ):
        answer = page.request.get(path, max_redirects=0, headers=csrf if path.startswith("/api/") else None)
        assert answer.status == 403, (path, answer.status)
        assert archive.sha256 not in answer.text(), path

    # The refusal a support member reads leads back to the console, not to a user's dashboard.
    response = page.goto("/archives")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.get_by_role("link", name="Back to the support console").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()

    # The console itself on a phone: every page support opens fits 390 px and passes axe.
    page.set_viewport_size(ViewportSize(width=PHONE["width"], height=PHONE["height"]))
    problems = []
    for path in (
        "/support",
        "/support/find?q=alice",
        f"/support/find?q={archive.sha256[:12]}",
        f"/support/users/{alice_user}",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        if page_width(page) > PHONE["width"]:
            problems.append(f"{path}: {page_width(page)} px wide")
        problems += [f"{path}: {finding}" for finding in serious_violations(page)]
    assert problems == []
