"""The Archives pages in Chromium: list, detail, a link used by a browser with no session, delete."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask
from playwright.sync_api import expect

from store import Database
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.web.test_downloads import _export

pytestmark = pytest.mark.browser


def _fits_and_reads_well(page, name: str) -> None:
    """Screenshots at 1280 and 390 px; no serious axe finding and no sideways scrolling at either width."""
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
    assert all(path.stat().st_size > 0 for path in screenshot(page, name))


def test_list_detail_link_download_without_a_session_and_delete(
    app: Flask, db: Database, alice_user: int, live_server: str, browser, signed_in_page
) -> None:
    app.config["BASE_URL"] = live_server  # the address links are made with
    archive = _export(app, db, alice_user)
    page = signed_in_page

    page.get_by_role("link", name="Archives", exact=True).click()
    expect(page).to_have_title("Archives · Lifeboat")
    expect(page.get_by_role("link", name="Archives", exact=True)).to_have_attribute("aria-current", "page")
    _fits_and_reads_well(page, "archives")

    page.get_by_role("heading", level=2).get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Archive of")
    shown = page.locator("#detail-sha").inner_text().strip()
    assert shown == archive.sha256
    expect(page.locator("table.files")).to_contain_text("contacts/contacts.vcf")

    page.get_by_role("button", name="Create download link").click()
    expect(page.locator("[role=status]").first).to_contain_text("Download link created")
    url = page.locator("code.link-url").first.inner_text().strip()
    assert url.startswith(live_server + "/d/")
    expect(page.locator("#recipe")).to_contain_text(f"{url}/SHA256SUMS")
    _fits_and_reads_well(page, "archive-detail")

    stranger = browser.new_context()  # no cookies: the link alone must open the archive
    try:
        answer = stranger.request.get(url)
        assert answer.status == 200
        assert hashlib.sha256(answer.body()).hexdigest() == shown
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("link", name="Delete…").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Delete this archive?")
        page.get_by_role("button", name="Delete the archive").click()
        expect(page).to_have_title("Archives · Lifeboat")
        expect(page.locator("main")).to_contain_text("deleted; its download links no longer work")
        expect(page.locator("main")).to_contain_text("No archives yet")
        assert stranger.request.get(url).status == 410
    finally:
        stranger.close()


def test_the_changes_page_lists_each_change_on_a_phone_and_reads_well_to_a_screen_reader(
    app: Flask, db: Database, alice_user: int, signed_in_page
) -> None:
    archive = _export(app, db, alice_user)  # alice's names make 3 changes
    page = signed_in_page
    page.goto(f"/archives/{archive.id}")
    page.get_by_role("link", name="Each change, with its reason").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("What the export changed")
    table = page.get_by_role("table", name="All 3 changes")
    expect(table.get_by_role("row")).to_have_count(4)  # the header and one row a change
    expect(table).to_contain_text("notes/Home/Shopping list (2).md")
    _fits_and_reads_well(page, "archive-changes")
