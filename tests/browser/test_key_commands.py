"""At 390 px the `gpg` commands Settings gives read as typed: one line each, never broken at `--`.

Why: a user trial read `gpg --quick-set-expire FPR 1y` on a phone broken after a
hyphen, in the middle of `--`, and typed it so. The commands are `<code
class="command">` (`web.formatting.commands`): one unbroken line that scrolls
sideways in its own box when wider than the phone, while the page itself never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.conftest import PHONE, page_width, serious_violations
from tests.conftest import OpenPGPKeyMaker

ON_A_PHONE = ViewportSize(width=PHONE["width"], height=PHONE["height"])
pytestmark = [pytest.mark.browser, pytest.mark.slow]  # real gpg keys too

# Each command box: one line box, laid out no wider than its paragraph, scrolling if its text is wider.
MEASURE = """(boxes) => boxes.map((box) => {
  const line = parseFloat(getComputedStyle(box).lineHeight) || 20;
  return {
    text: box.textContent,
    lines: Math.round(box.getBoundingClientRect().height / line),
    nowrap: getComputedStyle(box).whiteSpace === "nowrap",
    overflow: getComputedStyle(box).overflowX,
    fits: box.getBoundingClientRect().right <= box.parentElement.getBoundingClientRect().right + 0.5,
    scrolls: box.scrollWidth > box.clientWidth,
  };
})"""


def _commands(page: Page, where: str) -> list[dict[str, Any]]:
    boxes = page.locator(f"{where} code.command")
    expect(boxes.first).to_be_visible()
    found: list[dict[str, Any]] = boxes.evaluate_all(MEASURE)
    return found


def _give_key(page: Page, key: str) -> None:
    page.goto("/settings#encryption")
    page.get_by_label("Your public key (age, SSH or OpenPGP)").fill(key)
    page.locator("#encryption").get_by_role("button", name="Encrypt my archives to this key").click()


def _each_on_one_line(found: list[dict[str, Any]], *, some_scroll: bool) -> None:
    assert found
    for box in found:
        assert box["lines"] == 1 and box["nowrap"] and box["fits"], box
        assert box["overflow"] == "auto", box
    if some_scroll:  # a 40-digit fingerprint does not fit 390 px: its box scrolls, the page does not
        assert any(box["scrolls"] for box in found), found


def test_at_390_px_the_key_expiry_warnings_gpg_commands_are_each_one_unbroken_line_and_the_page_fits(
    signed_in_page: Page, openpgp_key_expiring: OpenPGPKeyMaker
) -> None:
    page = signed_in_page
    page.set_viewport_size(ON_A_PHONE)
    _give_key(page, openpgp_key_expiring("10d"))
    expect(page.locator("#seal-warning")).to_contain_text("gpg --quick-set-expire")
    found = _commands(page, "#seal-warning")
    assert [box["text"].split()[:2] for box in found] == [["gpg", "--quick-set-expire"]] * 2
    assert found[1]["text"].endswith("1y '*'")
    _each_on_one_line(found, some_scroll=True)
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
    # The decrypt command in the same boxes; the hint under the key field wraps between words (below).
    _each_on_one_line(_commands(page, "#encryption .muted:not(#seal_key-hint)"), some_scroll=False)


def test_at_390_px_an_expired_keys_refusal_gives_its_gpg_commands_unbroken_and_the_page_fits(
    signed_in_page: Page, openpgp_key_expiring: OpenPGPKeyMaker
) -> None:
    page = signed_in_page
    page.set_viewport_size(ON_A_PHONE)
    _give_key(page, openpgp_key_expiring("1y", made="20200101T000000"))
    expect(page.locator("#seal_key-error")).to_contain_text("expired on 2020-12-31")
    found = _commands(page, "#seal_key-error")
    assert len(found) == 2
    _each_on_one_line(found, some_scroll=True)
    assert page_width(page) <= PHONE["width"]


# Each word of a wrapping command: on one line box, and inside its paragraph (not cut off at the right).
WORDS = """(words) => words.map((word) => ({
  text: word.textContent,
  boxes: word.getClientRects().length,
  inside: word.getBoundingClientRect().right <= word.closest("p").getBoundingClientRect().right + 0.5,
}))"""


def test_at_390_px_the_key_hints_gpg_command_wraps_between_its_words_and_shows_the_address_whole(
    signed_in_page: Page, tmp_path: Path
) -> None:
    page = signed_in_page
    page.set_viewport_size(ON_A_PHONE)
    page.goto("/settings#encryption")
    hint = page.locator("#seal_key-hint code.command")
    expect(hint).to_have_text("gpg --armor --export you@example.org")
    words: list[dict[str, Any]] = hint.locator("span").evaluate_all(WORDS)
    assert [word["text"] for word in words] == ["gpg", "--armor", "--export", "you@example.org"]
    assert all(word["boxes"] == 1 and word["inside"] for word in words), words  # never split, never cut
    assert hint.evaluate("(code) => code.scrollWidth <= code.closest('p').clientWidth")
    assert page_width(page) <= PHONE["width"]
    assert serious_violations(page) == []
    page.locator("#seal_key-hint").screenshot(path=str(tmp_path / "seal-key-hint-390.png"))
