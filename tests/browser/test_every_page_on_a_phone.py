"""Every page a signed-in user can reach, at 390 px: no sideways scrolling, nothing axe calls serious.

Why one walk over all of them: the bugs of the last round lived on pages no test
looked at (the automation page was 1,093 px wide on a phone, its commands
widening the page instead of scrolling in their box). New pages join by being
linked from the pages listed here or by adding their path.
"""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.api_tokens import create_token
from store import Database
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.browser.rows import add_archives, add_run

pytestmark = pytest.mark.browser

PAGES = ["/", "/history", "/archives", "/settings", "/settings/destinations", "/automate", "/account/password"]


def test_every_signed_in_page_fits_a_phone_and_reads_well_to_a_screen_reader(
    signed_in_page, live_server: str, db: Database, alice_user: int
) -> None:
    add_archives(db, alice_user, 2)
    run_id = add_run(db, alice_user, state="delivered", stage="done", progress=100, finished_at=dt.datetime.now(dt.UTC))
    page = signed_in_page
    page.set_viewport_size(PHONE)
    problems = []
    # An archive's own page needs a real archive file: tests/browser/test_archives.py walks it at 390 px.
    for path in [*PAGES, f"/runs/{run_id}"]:
        response = page.goto(live_server + path)
        assert response is not None and response.status == 200, path
        if page_width(page) > PHONE["width"]:
            problems.append(f"{path}: {page_width(page)} px wide")
        problems += [f"{path}: {finding}" for finding in serious_violations(page)]
    assert problems == []


def test_a_long_token_name_without_spaces_keeps_the_settings_page_phone_wide(
    signed_in_page, live_server: str, db: Database, alice_user: int
) -> None:
    """A user trial: a 100-character token name with no space made /settings 927 px wide at 390 px."""
    with db.session(write=True) as session:
        create_token(session, alice_user, "n" * 100, days=30, now=dt.datetime.now(dt.UTC))
    page = signed_in_page
    page.set_viewport_size(PHONE)
    response = page.goto(live_server + "/settings")
    assert response is not None and response.status == 200
    assert page.get_by_text("n" * 100).is_visible()
    assert page_width(page) <= PHONE["width"]
    screenshot(page, "settings-long-token-name")
