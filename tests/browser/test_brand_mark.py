"""The brand mark is drawn (inline SVG), so it shows in Debian's Chromium, which has no emoji font."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_brand_mark_paints_beside_the_name_and_is_hidden_from_screen_readers(page) -> None:
    page.goto("/login")
    brand = page.get_by_role("link", name="Lifeboat", exact=True)
    expect(brand).to_be_visible()
    mark = brand.locator("svg.brand-mark")
    expect(mark).to_have_attribute("aria-hidden", "true")
    box = mark.bounding_box()
    assert box is not None and round(box["width"]) == 22 and round(box["height"]) == 22
    # Painted: the mark's pixels differ from the same-sized patch of empty header beside the name.
    header = page.locator("header.top").bounding_box()
    assert header is not None
    blank = {"x": header["x"] + header["width"] / 2, "y": box["y"], "width": box["width"], "height": box["height"]}
    assert mark.screenshot() != page.screenshot(clip=blank)
    assert "⛵" not in page.content()
