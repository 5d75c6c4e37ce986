"""Browser fixtures: the real app served on loopback, Debian's Chromium through Playwright, axe-core.

Why a real server and a real browser: the defects these tests prove (a title
that shows markup, a page wider than a phone, a progress bar over its text,
links a screen reader cannot tell apart) exist only once a browser lays the
page out and runs its script. Chromium is Debian's (`make system-deps`
installs it); `playwright install` is never used. axe-core comes from the
`axe-playwright-python` wheel in the test lock, so no test touches the network.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.web import conftest as web_fixtures
from tests.web.conftest import PASSWORD

# The web tests' Alice (a user with a password), shared rather than copied.
alice_user = web_fixtures.alice_user

CHROMIUM = Path("/usr/lib/chromium/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Screenshots land here (gitignored) unless LIFEBOAT_SCREENSHOTS names another folder.
SCREENSHOTS = Path(os.environ.get("LIFEBOAT_SCREENSHOTS") or Path(__file__).parent / "screenshots")


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app behind a threaded WSGI server on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run `make system-deps` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server: str) -> Iterator[object]:
    """A fresh browser context (its own cookies) at desktop width, its base URL set to the live server."""
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def sign_in_page(alice_user: int) -> Callable[[object], object]:
    """Sign a page in as Alice through the real form; returns the page on the dashboard."""

    def sign_in(page, email: str = "alice@example.com", password: str = PASSWORD):
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/(#.*)?$|/\?"))
        return page

    return sign_in


@pytest.fixture
def signed_in_page(page, sign_in_page):
    return sign_in_page(page)


def screenshot(page, name: str) -> list[Path]:
    """Save `name`-desktop.png and `name`-390.png of the whole page; returns their paths."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for label, size in (("desktop", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    page.set_viewport_size(DESKTOP)
    return saved


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def page_width(page) -> int:
    """How wide the page lays out, once its stylesheets are in.

    Why wait: after a form post the new page's text is there (so `expect` passes) before
    style.css has loaded on a busy machine, and a layout without it is wider than a phone
    (438 px measured in a loaded run of the retention test).
    """
    page.wait_for_load_state("load")
    return int(page.evaluate("document.documentElement.scrollWidth"))
