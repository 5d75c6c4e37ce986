"""The support console in Chromium: from the queue to a user whose S3 delivery failed, and their receipts.

Why the staff session is made by a test client: the second factor (TOTP) is
built on another branch, and production has no way around it. The test signs
the staff member in through the real form with Flask's test client, marks that
session as past the second factor the way `web.staff_auth` does, and hands its
signed cookie to the browser: the app accepts it exactly as it would one made
in the browser, with no bypass in the application.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect

from store import Archive, Database, User
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


def test_a_long_address_and_long_archive_names_read_well_on_a_support_phone(
    app: Flask, db: Database, alice_user: int, page, live_server: str
) -> None:
    """A user trial: at 390 px the user's address broke mid-word in the heading, and the re-send drop-down
    showed only the start of archive names that differ at their end."""
    address = "alexandra.konstantinopoulou-vanderbilt@archives.a-very-long-domain-name.example.com"
    with db.session(write=True) as session:
        session.get(User, alice_user).email = address  # type: ignore[union-attr]
        for day in (1, 2):
            session.add(
                Archive(
                    user_id=alice_user,
                    filename=f"lifeboat-{address}-2026-12-0{day}T0200Z-with-a-long-tail.zip",
                    relpath=f"{alice_user}/missing-{day}.zip",
                    sha256="ab" * 32,
                    size=2048,
                    created_at=dt.datetime(2026, 12, day, 2, 0, tzinfo=dt.UTC),
                )
            )
    _staff_session(app, page, live_server, "sam@support.example.com", "support")
    page.set_viewport_size(PHONE)
    page.goto(f"/support/users/{alice_user}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(address)
    assert "@<wbr>archives." in heading.inner_html()
    options = page.locator("#support-resend-archive option").all_inner_texts()
    assert [re.match(r"\w{3} \d{1,2} Dec 2026, 02:00 UTC: lifeboat-", text) is not None for text in options] == [
        True,
        True,
    ], options
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
    screenshot(page, "support-user-long-names-phone")
