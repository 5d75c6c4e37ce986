"""The support console in Chromium: from the queue to a user whose S3 delivery failed, and their receipts.

Why the staff session is made by a test client: the second factor (TOTP) is
built on another branch, and production has no way around it. The test signs
the staff member in through the real form with Flask's test client, marks that
session as past the second factor the way `web.staff_auth` does, and hands its
signed cookie to the browser: the app accepts it exactly as it would one made
in the browser, with no bypass in the application.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect

from store import Database
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.web.conftest import staff_client
from tests.web.run_helpers import ETAG, KEY, VERSION
from tests.web.support_seed import ALICE_CONTENT, DENIED, SECRET, seed

pytestmark = pytest.mark.browser


def test_support_finds_a_user_whose_s3_delivery_failed_and_reads_receipts_then_an_admin_sees_it_audited(
    app: Flask, db: Database, alice_user: int, page, live_server: str
) -> None:
    seeded = seed(app, db, alice_user)
    _staff_session(app, page, live_server, "sam@support.example.com", "support")

    page.goto("/support")
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    failed = page.locator("tr.queue-item.delivery_failed")
    expect(failed).to_contain_text("alice@example.com")
    expect(failed).to_contain_text(DENIED)
    page.get_by_label("Show").select_option("delivery_failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.queue-item")).to_have_count(1)
    screenshot(page, "support-queue")
    assert serious_violations(page) == []

    page.get_by_role("link", name="Find a user").click()
    page.get_by_label("Email (start of it)", exact=False).fill("ALICE@")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name="1 user found")).to_be_visible()
    page.get_by_role("link", name="alice@example.com").click()

    expect(page.get_by_role("heading", name="alice@example.com (user")).to_be_visible()
    run = page.locator(f"#run-{seeded.delivered_run}")
    receipt = run.get_by_label("Receipt")
    for value in (KEY, VERSION, ETAG):
        expect(receipt).to_contain_text(value)
    expect(page.locator(f"#run-{seeded.failed_run}")).to_contain_text(DENIED)
    expect(page.locator(".destinations")).to_contain_text("access key AKIA…WXYZ (secret key stored encrypted)")
    expect(page.locator("code.sha256").first).to_have_text(seeded.sha256)
    body = page.content()
    assert SECRET not in body and not any(content in body for content in ALICE_CONTENT)
    assert page.locator("main a[href*='download'], main a[href^='/d/']").count() == 0
    screenshot(page, "support-user")
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]

    # An admin reads the audit log: the support member's look at alice's page is in it.
    page.context.clear_cookies()
    _staff_session(app, page, live_server, "ada@admin.example.com", "admin")
    page.goto("/support/audit")
    page.get_by_label("Action").select_option("view_user")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("region", name="Audit rows").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("sam@support.example.com")
    expect(rows).to_contain_text("alice@example.com")
    screenshot(page, "support-audit")
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]


def _staff_session(app: Flask, page, live_server: str, email: str, role: str) -> None:
    """Give the browser the signed session cookie of a staff member past the second factor (see above)."""
    client = staff_client(app, email, role)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    host = urlsplit(live_server).hostname
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "domain": host, "path": "/"}])
