"""Bulk re-send in Chromium: a support member dry-runs, starts and watches the job, on a desk and on a phone.

The staff session is a signed cookie made through the real sign-in form (see
test_support_console.py); the job runs in the request (`bulk_resend.INLINE`)
so the page shows it finished without waiting on a thread.
"""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import expect

from jobs import bulk_resend
from store import Database
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.browser.test_support_console import _staff_session
from tests.delivery.bulk_seed import OUTAGE, failed_user

pytestmark = pytest.mark.browser


def test_support_dry_runs_then_re_sends_to_everyone_an_outage_hit_and_watches_it_finish(
    app: Flask, db: Database, page, live_server: str
) -> None:
    app.extensions[bulk_resend.INLINE] = True
    failed_user(db, "m1@example.com", failed_at=OUTAGE, endpoint="https://minio.example")
    failed_user(db, "mail@example.com", failed_at=OUTAGE, kind="email")
    _staff_session(app, page, live_server, "sam@support.example.com", "support")

    page.goto("/support")
    page.get_by_role("link", name="Bulk re-send").click()
    page.get_by_label("Failed from (UTC)").fill("2026-12-05T08:00")
    page.get_by_label("Failed until (UTC)").fill("2026-12-05T12:00")
    page.get_by_label("Reason").fill("MinIO outage of 5 December")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("heading", name="Dry run: 2 users would get")).to_be_visible()
    expect(page.get_by_role("region", name="Sample of the users")).to_contain_text("s3 (minio.example)")
    screenshot(page, "support-bulk-dry-run")
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]

    page.get_by_role("button", name="Start: re-send to 2 users").click()
    expect(page.get_by_role("status")).to_contain_text("2 of 2 users done (2 re-sent, 0 skipped), finished.")
    expect(page.get_by_label("Users done")).to_have_attribute("value", "2")
    screenshot(page, "support-bulk-progress")
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]
