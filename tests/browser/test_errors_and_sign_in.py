"""Error pages and sign-in in Chromium: a way back everywhere, and no dead end after signing out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from store import Database, ExportRun
from tests.browser.conftest import serious_violations
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_export_now_after_signing_out_in_another_tab_lands_on_the_dashboard_not_405(
    signed_in_page, db: Database
) -> None:
    page = signed_in_page
    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("button", name="Export now").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your data")).to_be_visible()
    assert "405" not in page.content()
    expect(page.get_by_role("status").first).to_contain_text("Nothing was started")
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ExportRun)) == 0


def test_an_unknown_page_says_so_with_a_way_back(signed_in_page) -> None:
    page = signed_in_page
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert page.title() == "Page not found · Lifeboat"
    assert serious_violations(page) == []
    page.get_by_role("link", name="Back to your dashboard").click()
    expect(page.get_by_role("heading", name="Your data")).to_be_visible()


def test_a_form_whose_session_cookie_expired_gets_a_friendly_page_not_csrf_jargon(signed_in_page) -> None:
    page = signed_in_page
    page.context.clear_cookies()
    page.get_by_role("button", name="Export now").click()
    expect(page.get_by_role("heading", name="This form expired")).to_be_visible()
    assert "CSRF" not in page.content()
    page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_expired_sign_in_form_asks_again_on_the_same_page(page, alice_user: int) -> None:
    page.goto("/login")
    page.context.clear_cookies()
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The sign-in form expired")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your data")).to_be_visible()


def test_an_empty_sign_in_form_says_what_to_fill_in(page, alice_user: int) -> None:
    page.goto("/login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Enter your email address.")).to_be_visible()
    expect(page.get_by_text("Enter your password.")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    assert serious_violations(page) == []
    assert re.search(r"/login", page.url)
