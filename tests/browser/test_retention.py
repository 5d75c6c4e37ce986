"""In Chromium at 390 px: choose a bucket's retention, see what it would delete (nothing is), save it, read it back."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations
from tests.browser.test_destinations import add_bucket
from tests.servers.s3 import ADMIN_KEYS

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_a_retention_policy_is_previewed_and_saved_on_a_phone(
    app: Flask, signed_in_page: Page, live_server: str, moto_server: Any, s3_bucket: str
) -> None:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]
    keys = [f"lifeboat/alice/2026/{m:02d}/lifeboat-alice-2026{m:02d}01T030000Z.zip" for m in range(1, 13)]
    for key in keys:
        moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    page = signed_in_page
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    page.goto(live_server + "/settings/destinations")
    add_bucket(page, moto_server.url, s3_bucket, ADMIN_KEYS["aws_access_key_id"], ADMIN_KEYS["aws_secret_access_key"])
    entry = page.locator("li", has=page.get_by_role("heading", name=f"s3://{s3_bucket}"))
    expect(entry).to_contain_text("Keeps every archive (no retention policy).")

    entry.get_by_text("Choose which archives stay in this bucket").click()
    entry.get_by_label("Keep the last").fill("3")
    entry.get_by_label("Months (one a month)").fill("6")
    entry.get_by_role("button", name="Show what it would delete").click()
    preview = page.locator("#retention-preview")
    # None of these twelve was delivered (so verified) by Lifeboat: the page says why nothing would go.
    expect(preview).to_contain_text("no verified archive yet: nothing is deleted (12 archive(s) in the bucket)")
    expect(preview).to_contain_text("Nothing was deleted.")
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
    screenshot(page, "retention-preview")  # at 1280 and 390 px; it leaves the page at 1280
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})

    entry = page.locator("li", has=page.get_by_role("heading", name=f"s3://{s3_bucket}"))
    entry.get_by_role("button", name="Save").click()
    summary = "Keeps the last 3 and one a month for 6 months; never the newest verified archive."
    expect(page.get_by_text(f"s3://{s3_bucket}: {summary}")).to_be_visible()
    expect(page.locator("li", has=page.get_by_role("heading", name=f"s3://{s3_bucket}"))).to_contain_text(summary)
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
    listed = {o["Key"] for o in moto_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert listed == set(keys)
