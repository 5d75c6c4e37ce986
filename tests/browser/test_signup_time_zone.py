"""In Chromium set to Europe/Berlin: sign-up sends the browser's time zone, and Settings shows it."""

from __future__ import annotations

import pytest
from flask import Flask

from store import get_db
from store.accounts import find_user

pytestmark = [pytest.mark.browser, pytest.mark.server]
PASSWORD = "sailing home at dawn"


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_sign_up_takes_the_browsers_time_zone_and_works_without_javascript(
    app: Flask, browser: object, live_server: str, javascript: bool
) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=live_server, timezone_id="Europe/Berlin", java_script_enabled=javascript
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto("/signup")
        page.get_by_label("Email").fill("sam@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_role("heading", level=1).wait_for()
        assert "Create an account" not in page.content()
    finally:
        context.close()
    with get_db(app).session() as session:
        user = find_user(session, "sam@example.com")
        assert user is not None and user.timezone == ("Europe/Berlin" if javascript else "UTC")
