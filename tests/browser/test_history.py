"""History and run detail in Chromium: cancel a waiting export, run one, then find it, its stages and its receipt."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import expect

import jobs
from jobs import run_lifecycle
from store import Database
from store.base import utcnow
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.web.run_helpers import BUCKET_LABEL, ETAG, KEY, VERSION, ReceiptDelivery, use_bucket

pytestmark = pytest.mark.browser


@pytest.fixture
def pool(app: Flask) -> Iterator[None]:
    """The embedded export pool, started only when the test calls for it (a queued run waits until then)."""
    yield
    runtime = app.extensions[jobs.EXTENSION]["runtime"]
    if runtime is not None:
        runtime.shutdown()


def test_cancel_a_waiting_export_then_follow_a_finished_one_to_its_stages_and_receipt(
    app: Flask, db: Database, alice_user: int, pool: None, signed_in_page
) -> None:
    page = signed_in_page
    # No worker runs yet, so this export waits: it can be cancelled from the dashboard.
    with db.session(write=True) as session:
        run_lifecycle.request_run(session, alice_user, "schedule", now=utcnow())
    page.reload()
    cancel = page.get_by_role("button", name="Cancel this export")
    expect(cancel).to_be_visible()
    cancel.click()
    expect(page.locator(".flash")).to_contain_text("Export cancelled")
    expect(page.get_by_role("button", name="Cancel this export")).to_have_count(0)
    expect(page.locator(".facts div", has_text="Last export")).to_contain_text("Cancelled")

    use_bucket(app, db, alice_user, ReceiptDelivery())
    jobs.start_embedded(app)
    page.get_by_role("button", name="Export now").click()
    expect(page.locator(".facts div", has_text="Last export")).to_contain_text("Delivered", timeout=30_000)

    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("link", name="History")).to_have_attribute("aria-current", "page")
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Delivered")
    expect(rows.nth(0)).to_contain_text("You pressed “Export now”")
    expect(rows.nth(1)).to_contain_text("Cancelled")
    expect(rows.nth(1)).to_contain_text("Your schedule")
    screenshot(page, "history")
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]
    page.set_viewport_size({"width": 1280, "height": 900})

    rows.nth(0).get_by_role("link", name="Details").click()
    stages = page.locator("table.stages tbody tr")
    for name in ("Starting", "Contacts", "Calendars", "Notes", "Delivering", "Done"):
        expect(stages.filter(has_text=name).first).to_be_visible()
    expect(stages.filter(has_text="Contacts").first.locator('td[data-label="Took"]')).to_have_text(
        # "under a second" or "N s": a duration, never blank
        re.compile(r"under a second|\d+ (s|min)")
    )
    receipt = page.locator(".delivery").first
    expect(receipt).to_contain_text(BUCKET_LABEL)
    for value in (KEY, VERSION, ETAG):
        expect(receipt.locator(".receipt")).to_contain_text(value)
    expect(page.get_by_role("link", name="Download the archive")).to_be_visible()
    screenshot(page, "run-detail")
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]
