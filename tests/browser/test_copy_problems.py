"""A copy a later check found changed, and a partly delivered run, in Chromium at desktop width and on a phone.

Why in a browser: the overview's warning and the amber "Partly delivered"
badge must fit 390 px and pass axe's contrast rules, which only a laid-out
page shows. The rows are what `jobs.scrub` and a delivery write (the web and
delivery tests prove they are written so on moto's real server).
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from playwright.sync_api import expect

from store import Database, DeliveryAttempt, Destination, DestinationCheck, ExportRun
from store.base import utcnow
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.web.run_helpers import run_now

pytestmark = pytest.mark.browser

FOUND = "s3://mybackup/lifeboat/2026/12/lifeboat-alice.zip is 9 bytes now; the archive delivered there was 20480"


def _changed_copy(app: Flask, db: Database, user_id: int) -> str:
    """A real export (kept here), then the rows of its delivery to a bucket and a check that found it changed."""
    run_id, _ = run_now(app, db, user_id)
    at = utcnow()
    with db.session(write=True) as session:
        bucket = Destination(user_id=user_id, kind="s3", label="s3://mybackup", settings_json='{"bucket": "mybackup"}')
        session.add(bucket)
        session.flush()
        session.add(
            DeliveryAttempt(
                run_id=run_id,
                destination_id=bucket.id,
                outcome="delivered",
                location="s3://mybackup/lifeboat/2026/12/lifeboat-alice.zip",
                object_key="lifeboat/2026/12/lifeboat-alice.zip",
                message="uploaded and verified by HEAD: size, SHA-256 and the MD5 ETag match",
            )
        )
        bucket.status, bucket.status_message, bucket.status_at = "ok", "verified by HEAD", at
        session.add(
            DestinationCheck(
                destination_id=bucket.id,
                object_key="lifeboat/2026/12/lifeboat-alice.zip",
                run_id=run_id,
                state="changed",
                detail=FOUND,
                checked_at=at,
                since=at - dt.timedelta(days=2),
            )
        )
        run = session.get(ExportRun, run_id)
        assert run is not None and run.archive_id is not None
        return run.archive_id


def test_a_changed_copy_warns_on_the_overview_destinations_and_archive_pages_on_a_phone(
    app: Flask, db: Database, alice_user: int, signed_in_page
) -> None:
    archive_id = _changed_copy(app, db, alice_user)
    page = signed_in_page
    page.goto("/")
    warning = page.locator(".copy-warning")
    expect(warning).to_contain_text("s3://mybackup: copy changed since")
    expect(warning).to_contain_text("What to do: Something rewrote it after delivery.")
    for name, path in (("copy-overview", "/"), ("copy-destinations", "/settings/destinations"),
                       ("copy-archive", f"/archives/{archive_id}")):  # fmt: skip
        page.goto(path)
        expect(page.locator("main")).to_contain_text("Copy changed" if path != "/" else "copy changed")
        screenshot(page, name)
        page.set_viewport_size(PHONE)
        assert page_width(page) <= PHONE["width"], path
        assert serious_violations(page) == [], path
        page.set_viewport_size({"width": 1280, "height": 900})


def test_a_partly_delivered_run_has_an_amber_badge_not_the_failed_one(
    db: Database, alice_user: int, signed_in_page
) -> None:
    with db.session(write=True) as session:
        run = ExportRun(user_id=alice_user, trigger="manual", state="failed", stage="done", finished_at=utcnow(),
                        error="The bucket “mybackup” does not exist.")  # fmt: skip
        places = [Destination(user_id=alice_user, kind="email", label=f"email {n}") for n in ("a", "b")]
        session.add_all([run, *places])
        session.flush()
        session.add(DeliveryAttempt(run_id=run.id, destination_id=places[0].id, outcome="delivered", message="sent"))
        session.add(DeliveryAttempt(run_id=run.id, destination_id=places[1].id, outcome="permanent", message="no"))
    page = signed_in_page
    page.goto("/history")
    badge = page.locator(".badge", has_text="Partly delivered")
    expect(badge).to_have_class("badge partly")
    colours = badge.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
    assert colours == ["rgb(138, 60, 0)", "rgb(255, 228, 196)"]  # amber (6.3:1), not failed's red
    screenshot(page, "partly-history")
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
