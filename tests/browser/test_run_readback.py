"""A repeat export whose read-back found differences, at 390 px: the user's run page and the support queue.

Why in a browser: the reading line, the difference lines (long UIDs and values) and
the queue's long message must wrap on a phone rather than widen the page, and
axe must find nothing serious on either page.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask import Flask
from playwright.sync_api import expect

from store import Database, ExportFidelity
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.browser.rows import add_run
from tests.browser.test_support_console import _staff_session

pytestmark = pytest.mark.browser

LONG_UID = "contact-000000-with-a-uid-nobody-would-type@lifeboat.example"
FIELDS = "contact emails[0].value; contact emails[0].types[0]; contact extra['X-ABLABEL']"


def _differing_run(db: Database, user_id: int) -> str:
    run_id = add_run(db, user_id, state="delivered", stage="done", progress=100, finished_at=dt.datetime.now(dt.UTC))
    described = [
        {"kind": "contact", "item": LONG_UID, "field": "emails[0].value", "expected": "'x' * 59…", "found": "absent"}
    ] * 3
    detail = {
        "differences": [
            f"{d['kind']} {d['item']}: {d['field']}: expected {d['expected']}, found {d['found']}" for d in described
        ],
        "changes": [],
        "described": described,
    }
    with db.session(write=True) as session:
        session.add(
            ExportFidelity(
                run_id=run_id,
                items=12_000,
                differences=3,
                changes=0,
                detail=json.dumps(detail),
                method="memo",
                skipped=11_900,
                difference_fields=FIELDS,
            )
        )
    return run_id


def test_a_repeat_run_with_differences_reads_well_on_a_phone_for_its_user_and_for_support(
    app: Flask, db: Database, alice_user: int, signed_in_page, live_server: str, browser
) -> None:
    run_id = _differing_run(db, alice_user)
    page = signed_in_page
    page.set_viewport_size(PHONE)
    page.goto(f"/runs/{run_id}")
    card = page.locator("section[aria-labelledby=fidelity-title]")
    expect(card).to_contain_text("12,000 items compared, 11,900 proven by earlier drills (100 read again).")
    expect(card).to_contain_text("Support has been told which kinds of data and fields differ")
    assert page_width(page) <= PHONE["width"] and serious_violations(page) == []
    screenshot(page, "run-readback")

    staff = browser.new_context(base_url=live_server, viewport=PHONE).new_page()
    _staff_session(app, staff, live_server, "sam@support.example.com", "support")
    staff.goto("/support?kind=drill_differences")
    row = staff.locator("tr.queue-item.drill_differences")
    expect(row).to_contain_text(f"The fidelity drill found 3 differences in run {run_id} (12,000 items read back).")
    expect(row).to_contain_text(f"Fields: {FIELDS}.")
    assert LONG_UID not in staff.content()
    assert page_width(staff) <= PHONE["width"] and serious_violations(staff) == []
    screenshot(staff, "support-queue-readback")
    staff.context.close()
