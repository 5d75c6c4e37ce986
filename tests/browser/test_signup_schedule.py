"""In Chromium: sign up, confirm by the emailed link, sign in, set a schedule and see its next runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.servers.smtp import SmtpServer
from tests.web.mail_helpers import link_in, use_mail_server, wait_for_mail

pytestmark = [pytest.mark.browser, pytest.mark.server]

PASSWORD = "sailing home at dawn"


def test_sign_up_confirm_sign_in_and_set_a_schedule(
    app: Flask, smtp_server: SmtpServer, live_server: str, page: Page, tmp_path: Path
) -> None:
    live_url = live_server
    use_mail_server(app, smtp_server)
    p = page

    p.goto(f"{live_url}/login")
    p.get_by_role("link", name="Create an account").click()
    p.get_by_label("Email").fill("sam@example.com")
    p.get_by_label("Your name (optional)").fill("Sam Ölund")
    p.get_by_label("Password", exact=True).fill(PASSWORD)
    p.get_by_label("Password again").fill(PASSWORD)
    p.get_by_role("button", name="Create account").click()
    expect(p.get_by_role("heading", name="Check your email")).to_be_visible()

    (message,) = wait_for_mail(smtp_server)
    p.goto(live_url + link_in(message, "/confirm/"))
    expect(p.get_by_text("Your address is confirmed")).to_be_visible()

    p.get_by_label("Email").fill("sam@example.com")
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p.get_by_role("link", name="Settings")).to_be_visible()
    expect(p.get_by_text("Confirm your address")).to_have_count(0)

    p.get_by_role("link", name="Settings").click()
    p.get_by_label("How often").select_option("daily")
    p.get_by_label("Time of day").fill("03:30")
    p.get_by_label("Time zone").fill("Europe/Berlin")
    p.get_by_role("button", name="Preview next runs").click()
    expect(p.locator("#preview-runs li")).to_have_count(3)

    p.get_by_role("button", name="Save schedule").click()
    expect(p.get_by_text("Schedule saved")).to_be_visible()
    runs = p.locator("#next-runs li")
    expect(runs).to_have_count(3)
    for n in range(3):
        expect(runs.nth(n)).to_contain_text("(Europe/Berlin)")
    p.screenshot(path=str(tmp_path / "settings-desktop.png"), full_page=True)

    p.set_viewport_size({"width": 390, "height": 844})
    assert p.evaluate("document.documentElement.scrollWidth") <= 390
    p.screenshot(path=str(tmp_path / "settings-390.png"), full_page=True)
