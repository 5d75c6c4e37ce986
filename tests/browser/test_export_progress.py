"""Export now in Chromium with the real in-process pool: progress passes through the stages to the archive."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

import jobs

pytestmark = pytest.mark.browser


@pytest.fixture
def export_pool(app: Flask) -> Iterator[None]:
    """The embedded pool, each exported item slowed down so a person (and this test) can watch."""
    jobs.get_context(app).on_progress = lambda _stage, _percent: time.sleep(0.4)
    jobs.start_embedded(app)
    yield
    app.extensions[jobs.EXTENSION]["runtime"].shutdown()


def test_export_now_shows_each_stage_by_name_then_the_new_archive(export_pool: None, signed_in_page) -> None:
    page = signed_in_page
    page.get_by_role("button", name="Export now").click()
    stage = page.locator(".progress-block .stage")
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # One look that does not wait: the block may go (the page reloads when the run ends)
        # between a count and a read, and a read would then wait for it.
        try:
            texts = stage.all_inner_texts()
        except PlaywrightError:  # caught mid-reload: look again at the new page
            continue
        if texts:
            text = texts[0]
            if not seen or seen[-1] != text:
                seen.append(text)
        elif seen:
            break  # the page reloaded without a progress block: the run finished
        page.wait_for_timeout(150)
    names = {text.split(":")[0] for text in seen}
    assert len(names & {"Contacts", "Calendars", "Notes"}) >= 2, seen
    assert any(" of " in text for text in seen), seen
    expect(page.locator(".facts div", has_text="Last export")).to_contain_text("Kept here")  # no destination
    expect(page.locator("table.archives tbody tr")).to_have_count(1)
