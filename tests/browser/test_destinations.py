"""In Chromium: an S3 bucket on moto with a wrong secret, Test says what to fix; add it right, Test passes; remove."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.server]


def add_bucket(page: Page, endpoint: str, bucket: str, key_id: str, secret: str) -> None:
    page.get_by_label("Endpoint URL (leave empty for AWS)").fill(endpoint)
    page.get_by_label("Bucket", exact=True).fill(bucket)
    page.get_by_label("Folder in the bucket (prefix)").fill("lifeboat/alice")
    page.get_by_label("Path-style addresses").check()
    page.get_by_label("Access key and secret key").check()
    page.get_by_label("Access key ID").fill(key_id)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_role("button", name="Add bucket").click()
    expect(page.get_by_text(f"Bucket {bucket} added.")).to_be_visible()


def test_add_an_s3_bucket_test_it_wrong_then_right_and_remove_it(
    app: Flask, signed_in_page: Page, moto_server: Any, s3_bucket: str, moto_s3_keys: dict[str, str]
) -> None:
    app.config["ENDPOINT_ALLOW_LIST"] = ["127.0.0.0/8"]  # moto listens on loopback, as the API tests allow it
    keys = moto_s3_keys
    page = signed_in_page
    page.on("dialog", lambda dialog: dialog.accept())  # the "Remove …?" confirmation

    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_text("Download only")).to_be_visible()
    page.get_by_role("link", name="Manage destinations").click()
    expect(page.get_by_role("heading", name="Destinations", exact=True)).to_be_visible()
    expect(page.locator("#download-only")).to_be_visible()

    page.get_by_label("Bucket", exact=True).fill(s3_bucket)
    page.get_by_role("button", name="Show the policy for this bucket").click()
    expect(page.locator("#policy")).to_contain_text(f"arn:aws:s3:::{s3_bucket}/lifeboat/*")

    label = f"s3://{s3_bucket}"
    add_bucket(page, moto_server.url, s3_bucket, keys["access_key_id"], "not-the-right-secret")
    entry = page.locator("li", has=page.get_by_role("heading", name=label))
    expect(entry).to_contain_text(f"access key {keys['access_key_id'][:4]}…{keys['access_key_id'][-4:]}")
    page.get_by_role("button", name=f"Test {label}").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Test failed:")
    expect(result).to_contain_text("the secret access key does not belong to the access key ID")
    expect(result).to_contain_text("Enter the secret access key again.")
    expect(page.locator("li", has=page.get_by_role("heading", name=label))).to_contain_text("Not working")
    screenshot(page, "destinations-test-failed")
    assert page_width(page) <= 1280
    assert serious_violations(page) == []

    page.get_by_role("button", name=f"Remove {label}").click()
    expect(page.get_by_text(f"{label} removed.")).to_be_visible()
    add_bucket(page, moto_server.url, s3_bucket, keys["access_key_id"], keys["secret_access_key"])
    page.get_by_role("button", name=f"Test {label}").click()
    expect(page.locator("#test-result")).to_contain_text("Test passed: Wrote, read back and deleted a test object")
    expect(page.locator("li", has=page.get_by_role("heading", name=label))).to_contain_text("Working")
    assert keys["secret_access_key"] not in page.content()
    screenshot(page, "destinations-test-passed")
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []

    page.get_by_role("button", name=f"Remove {label}").click()
    expect(page.get_by_text(f"{label} removed.")).to_be_visible()
    expect(page.locator("#download-only")).to_be_visible()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_object_lock_heading_stands_apart_from_the_trust_policy_above_it(
    signed_in_page: Page, live_server: str, width: int
) -> None:
    """A user trial: "Protect past archives (S3 Object Lock)" sat flush under "Trust policy for the role".

    The legend's own top margin does nothing inside a fieldset, so the two read as one line of text.
    """
    page = signed_in_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server + "/settings/destinations")
    summary = page.locator("#add-s3 summary", has_text="Trust policy for the role").bounding_box()
    legend = page.locator("#add-s3 fieldset.lock legend").bounding_box()
    assert summary is not None and legend is not None
    assert legend["y"] - (summary["y"] + summary["height"]) >= 16
