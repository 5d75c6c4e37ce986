"""An admin made at the command line signs in with a password and an authenticator code, then adds a support user."""

from __future__ import annotations

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from store import Database, User
from tests.browser.conftest import PHONE, page_width, screenshot, serious_violations

pytestmark = pytest.mark.browser

ADMIN = "admin@lifeboat.example"
PASSWORD = "the admin's long passphrase"


@pytest.fixture
def cli_admin(app: Flask) -> str:
    """The first admin, created the way an operator does it: `users create … --password-stdin`."""
    result = app.test_cli_runner().invoke(
        args=["users", "create", ADMIN, "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    return ADMIN


def _fits_a_phone_and_passes_axe(page, name: str) -> None:
    assert serious_violations(page) == []
    screenshot(page, name)
    page.set_viewport_size(PHONE)
    assert page_width(page) <= PHONE["width"]
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_admin_enrols_an_authenticator_and_creates_a_support_user(page, cli_admin: str, db: Database) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(cli_admin)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Set up your authenticator")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    _fits_a_phone_and_passes_axe(page, "staff-enrol")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and continue").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    _fits_a_phone_and_passes_axe(page, "staff-recovery-codes")

    page.goto("/admin/staff")
    expect(page.get_by_role("heading", name="Staff accounts")).to_be_visible()
    page.get_by_label("Email").fill("helper@lifeboat.example")
    page.get_by_label("Role").select_option("support")
    page.get_by_label("Reason", exact=True).fill("joins the support rota")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Created support account helper@lifeboat.example")
    row = page.get_by_role("row").filter(has_text="helper@lifeboat.example")
    expect(row).to_contain_text("support")
    expect(row).to_contain_text("not yet")
    expect(page.get_by_role("row").filter(has_text=cli_admin)).to_contain_text("enrolled")
    _fits_a_phone_and_passes_axe(page, "admin-staff")
    with db.session() as session:
        helper = session.scalar(select(User).where(User.email == "helper@lifeboat.example"))
        assert helper is not None and helper.role == "support" and helper.password_hash is None

    # A token for the helper's scripts, shown once; the page fits a phone.
    page.get_by_role("link", name="Staff API tokens").click()
    expect(page.get_by_role("heading", name="Staff API tokens")).to_be_visible()
    page.get_by_label("Staff member").select_option(label="helper@lifeboat.example (support)")
    page.get_by_label("What it is for").fill("outage runbook")
    page.get_by_label("Reason", exact=True).fill("runs the outage runbook")
    page.get_by_role("button", name="Make token").click()
    expect(page.get_by_role("status")).to_contain_text("shown only this once")
    expect(page.locator("#new-token")).to_contain_text("lb_")
    expect(page.get_by_role("row").filter(has_text="outage runbook")).to_contain_text("helper@lifeboat.example")
    _fits_a_phone_and_passes_axe(page, "admin-staff-tokens")
