"""The dashboard in Chromium: its title, the last and next export, progress, phones, names and units."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from store import Database
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.browser.rows import add_archives, add_run, set_schedule, update_run
from web.formatting import local_time

pytestmark = pytest.mark.browser


def test_tab_title_is_plain_words_and_the_progress_script_loads_once(signed_in_page) -> None:
    page = signed_in_page
    assert page.title() == "Your data · Lifeboat"
    assert page.locator('script[src*="progress.js"]').count() == 1


def test_dashboard_shows_last_and_next_export_instead_of_no_exports_yet(
    signed_in_page, db: Database, alice_user: int
) -> None:
    add_archives(db, alice_user, 2)
    add_run(db, alice_user, state="delivered", stage="done", progress=100, finished_at=dt.datetime.now(dt.UTC))
    set_schedule(db, alice_user, now=dt.datetime.now(dt.UTC))
    page = signed_in_page
    page.reload()
    assert "No exports yet" not in page.content()
    facts = page.locator(".facts")
    expect(facts.locator("div", has_text="Last export")).to_contain_text("Kept here")  # no destination set
    next_export = facts.locator("div", has_text="Next export")
    expect(next_export).to_contain_text("Daily at 02:00")
    expect(next_export.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))


def test_a_running_export_names_its_stage_and_items_and_its_bar_never_covers_the_text(
    signed_in_page, db: Database, alice_user: int
) -> None:
    add_run(db, alice_user, state="running", stage="calendars:120/500", progress=45, attempt=1)
    page = signed_in_page
    page.reload()
    bar = page.get_by_role("progressbar", name="Export progress")
    expect(bar).to_have_attribute("value", "45")
    stage = page.locator(".progress-block .stage")
    expect(stage).to_have_text("Calendars: 120 of 500 events (45%)")
    bar_box, text_box = bar.bounding_box(), stage.bounding_box()
    assert bar_box is not None and text_box is not None
    assert bar_box["y"] + bar_box["height"] <= text_box["y"], (bar_box, text_box)
    screenshot(page, "dashboard-running")
    assert serious_violations(page) == []


def test_progress_updates_without_reload_and_a_retry_says_when_the_next_attempt_is(
    signed_in_page, db: Database, alice_user: int
) -> None:
    run_id = add_run(db, alice_user, state="running", stage="starting", progress=0, attempt=1)
    page = signed_in_page
    page.reload()
    live = page.locator(".progress-block [aria-live=polite]")
    update_run(db, run_id, stage="contacts:2/3", progress=20)
    expect(page.locator(".progress-block .stage")).to_have_text("Contacts: 2 of 3 contacts (20%)")
    expect(live).to_contain_text("Contacts")
    retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)
    update_run(db, run_id, state="retrying", not_before=retry_at, error="The bucket did not answer; trying again.")
    stage = page.locator(".progress-block .stage")
    expect(stage).to_contain_text("Attempt 1 of 5 did not finish. Next attempt at ")
    expect(stage).to_contain_text(local_time(retry_at, "Europe/Berlin", with_date=False))  # Alice's zone
    expect(page.locator(".progress-block .run-error")).to_have_text("The bucket did not answer; trying again.")
    expect(live).to_contain_text("Next attempt")


def test_at_390_pixels_the_page_fits_and_the_archive_table_stays_in_its_card(
    signed_in_page, db: Database, alice_user: int
) -> None:
    add_archives(db, alice_user, 10)
    add_run(db, alice_user, state="running", stage="notes:1/3", progress=80, attempt=1)
    page = signed_in_page
    page.set_viewport_size(PHONE)
    page.reload()
    assert page_width(page) <= PHONE["width"]
    card = page.locator("section", has=page.locator("#archives-title")).bounding_box()
    assert card is not None
    for row in page.locator("table.archives tbody tr").all():
        box = row.bounding_box()
        assert box is not None and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5


def test_sizes_plurals_and_download_links_read_well(signed_in_page, db: Database, alice_user: int) -> None:
    add_archives(db, alice_user, 10, size=2048)
    page = signed_in_page
    page.reload()
    sizes = page.locator("table.archives td[data-label=Size]").all_inner_texts()
    assert "2.0 KB" in sizes and "20 KB" in sizes, sizes
    assert not any("0.0" in size for size in sizes)
    contents = page.locator("table.archives td[data-label=Contents]").first
    expect(contents).to_contain_text("1 attachment")
    assert "1 attachments" not in page.content()
    links = page.get_by_role("link", name=re.compile("^Download"))
    names = [link.evaluate("e => e.textContent") for link in links.all()]
    assert len(names) == 10 and len(set(names)) == 10, names
    assert all(re.search(r"\d{4}, \d\d:\d\d", name) for name in names), names


def test_dashboard_screenshots_and_no_serious_accessibility_violations(
    signed_in_page, db: Database, alice_user: int
) -> None:
    add_archives(db, alice_user, 4, size=3_500_000)
    add_run(db, alice_user, state="delivered", stage="done", progress=100, finished_at=dt.datetime.now(dt.UTC))
    set_schedule(db, alice_user, now=dt.datetime.now(dt.UTC))
    page = signed_in_page
    page.reload()
    assert serious_violations(page) == []
    page.set_viewport_size(PHONE)
    assert serious_violations(page) == []
    paths = screenshot(page, "dashboard")
    assert all(path.stat().st_size > 0 for path in paths)
