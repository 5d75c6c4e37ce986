"""Sign-in security: redirects stay on this site, cookies are scoped, sign-out ends sessions,
guessing is throttled, and metrics are not public."""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

import config
from store import Database, User
from store.passwords import set_password
from tests.profiles import examples
from tests.web.conftest import PASSWORD, csrf_token, sign_in
from web.limits import storage_uri
from web.redirects import safe_next

ORIGIN = "http://lifeboat.example"

# Values a browser could read as another origin, a script or a scheme.
HOSTILE_NEXT = [
    "/%09/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/%09/%09/evil.example",
    "http://evil.example",
    "https://evil.example/",
    "HTTP://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "//evil.example/%2e%2e",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "evil.example",
    "@evil.example",
    "/@evil.example/..//",
    "/%2e%2e//evil.example",
    "//evil.example@lifeboat.example",
    "//lifeboat.example@evil.example",
    "/\u3000/evil.example",
    "/\x7f/evil.example",
    "//%65vil.example",
    "\u2028//evil.example",
    "/" + "a" * 3000,
    "",
]


def browser_target(location: str) -> str:
    """Where a browser on ORIGIN goes for this Location (WHATWG: tabs/newlines dropped, \\ is /)."""
    cleaned = location.strip("".join(chr(c) for c in range(0x21)))
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    return urljoin(ORIGIN + "/", cleaned)


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_it_refuses_every_hostile_next(target: str) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize("target", HOSTILE_NEXT[:12])
def test_it_never_redirects_off_site_after_sign_in(app: Flask, alice_user: int, target: str) -> None:
    response = sign_in(app.test_client(), query="?next=" + quote(target, safe=""))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == "/"
    assert urlsplit(browser_target(location)).netloc == "lifeboat.example"


def test_the_reported_tab_form_no_longer_redirects_to_another_host(app: Flask, alice_user: int) -> None:
    response = sign_in(app.test_client(), query="?next=/%09/evil.example")
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/", "/runs/abc.json", "/archives/1/download?x=1#top", "/a/b%2Fc"])
def test_it_follows_a_same_site_next_after_sign_in(app: Flask, alice_user: int, target: str) -> None:
    response = sign_in(app.test_client(), query="?next=" + quote(target, safe=""))
    assert response.headers["Location"] == target


_ALPHABET = st.sampled_from([*"/\\\t\n\r %:@.?#aejvsx2F5C09\x00\x7f\u3000\u2028", "%2F", "%5C", "%09"])


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(_ALPHABET, max_size=12).map("".join))
@example("/%09/evil.example")
@example("/\\evil.example")
def test_whatever_next_says_the_browser_stays_on_this_site(target: str) -> None:
    accepted = safe_next(target)
    if accepted is not None:
        assert urlsplit(browser_target(accepted)).netloc == "lifeboat.example"
        assert accepted.startswith("/") and not accepted.startswith("//")


# -- cookies -------------------------------------------------------------------------------------


def _session_cookie_header(app: Flask) -> str:
    client = app.test_client()
    response = sign_in(client)
    cookies = response.headers.getlist("Set-Cookie")
    found = [c for c in cookies if c.startswith(app.config["SESSION_COOKIE_NAME"] + "=")]
    assert found, cookies
    return found[-1]


def test_the_session_cookie_is_samesite_lax_and_httponly(app: Flask, alice_user: int) -> None:
    cookie = _session_cookie_header(app)
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Secure" not in cookie  # BASE_URL is http here


def test_the_session_cookie_is_secure_when_the_base_url_is_https(tmp_path: object) -> None:
    assert config.load("/tmp/x", {"LIFEBOAT_BASE_URL": "https://lifeboat.example"})["SECURE_COOKIES"] is True
    assert config.load("/tmp/x", {"LIFEBOAT_BASE_URL": "http://127.0.0.1:5000"})["SECURE_COOKIES"] is False
    assert config.load("/tmp/x", {})["SECURE_COOKIES"] is False
    forced = {"LIFEBOAT_BASE_URL": "http://10.0.0.5", "LIFEBOAT_SECURE_COOKIES": "true"}
    assert config.load("/tmp/x", forced)["SECURE_COOKIES"] is True


def test_secure_cookies_setting_marks_the_cookie_secure(app: Flask, alice_user: int) -> None:
    from web import configure_cookies

    app.config["SECURE_COOKIES"] = True
    configure_cookies(app)
    cookie = _session_cookie_header(app)
    assert "Secure" in cookie and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


# -- sign-out ends the session --------------------------------------------------------------------


def _replay(app: Flask, cookie_value: str) -> FlaskClient:
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie_value)
    return thief


def _session_cookie(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def test_a_cookie_captured_before_sign_out_no_longer_opens_the_dashboard(app: Flask, signed_in: FlaskClient) -> None:
    captured = _session_cookie(app, signed_in)
    assert _replay(app, captured).get("/").status_code == 200
    response = signed_in.post("/logout", data={"csrf_token": csrf_token(signed_in, "/")})
    assert response.status_code == 302
    replayed = _replay(app, captured).get("/")
    assert replayed.status_code == 302 and replayed.headers["Location"].startswith("/login")


def test_signing_out_ends_the_sessions_on_every_device(app: Flask, signed_in: FlaskClient, alice_user: int) -> None:
    laptop = app.test_client()
    assert sign_in(laptop).status_code == 302
    signed_in.post("/logout", data={"csrf_token": csrf_token(signed_in, "/")})
    assert laptop.get("/").status_code == 302


def test_changing_the_password_ends_existing_sessions(
    app: Flask, signed_in: FlaskClient, db: Database, alice_user: int
) -> None:
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        set_password(user, "a new battery staple")
    assert signed_in.get("/").status_code == 302
    fresh = app.test_client()
    assert sign_in(fresh, password="a new battery staple").status_code == 302
    assert fresh.get("/").status_code == 200


def test_a_session_without_a_version_is_not_accepted(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    with client.session_transaction() as session:  # a cookie as issued before sessions were versioned
        session["_user_id"] = str(alice_user)
        session["_fresh"] = True
    assert client.get("/").status_code == 302


# -- throttling ------------------------------------------------------------------------------------


def _guess(client: FlaskClient, email: str = "alice@example.com") -> TestResponse:
    return sign_in(client, email=email, password="wrong")


def test_it_throttles_guessing_one_account_and_says_when_to_try_again(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    for _ in range(5):
        assert _guess(client).status_code == 200
    blocked = _guess(client)
    assert blocked.status_code == 429
    text = blocked.get_data(as_text=True)
    assert "Too many failed sign-in attempts" in text and "try again in 1 minute" in text
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    # Even the right password waits: otherwise a guesser would learn when they hit it.
    assert sign_in(client).status_code == 429
    # The limit is per account: another user on the same machine still signs in.
    assert _guess(client, email="bob@example.com").status_code == 200


def test_the_account_limit_counts_the_address_however_it_is_spelled(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    spellings = ["alice@example.com", "ALICE@example.com", " alice@example.com"]
    spellings += ["Alice@Example.com", "alice@EXAMPLE.com"]
    for email in spellings:
        _guess(client, email=email)
    assert _guess(client, email="aLiCe@example.com").status_code == 429


def test_successful_sign_ins_are_not_counted(app: Flask, alice_user: int) -> None:
    client = app.test_client()
    for _ in range(8):
        assert sign_in(client).status_code == 302


def test_the_default_limits_are_five_a_minute_per_account_and_fifty_an_hour_per_address() -> None:
    defaults = config.load("/tmp/x", {})
    assert defaults["LOGIN_ACCOUNT_LIMITS"] == "5/minute;20/hour" and defaults["LOGIN_ADDRESS_LIMITS"] == "50/hour"


def test_it_throttles_one_address_trying_many_accounts(app: Flask, alice_user: int) -> None:
    app.config["LOGIN_ADDRESS_LIMITS"] = "8/hour"  # the default is 50; fewer Argon2 checks keep this fast
    client = app.test_client()
    for n in range(8):
        assert _guess(client, email=f"user{n}@example.com").status_code == 200
    blocked = _guess(client, email="someone-new@example.com")
    assert blocked.status_code == 429
    assert "try again in" in blocked.get_data(as_text=True)
    other = app.test_client()
    response = other.post(
        "/login",
        data={"email": "alice@example.com", "password": PASSWORD, "csrf_token": csrf_token(other, "/login")},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 302  # another address is not affected


def test_the_window_passes(app: Flask, alice_user: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    client = app.test_client()
    for _ in range(6):
        _guess(client)
    assert sign_in(client).status_code == 429
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert sign_in(client).status_code == 302


@pytest.mark.parametrize(
    ("settings_", "expected"),
    [
        ({}, "memory://"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, "redis://127.0.0.1:6379/0"),
        ({"CELERY_BROKER_URL": "amqp://rabbit"}, "memory://"),
        ({"REDIS_URL": "redis://cache:6379/2", "CELERY_BROKER_URL": "redis://b/0"}, "redis://cache:6379/2"),
    ],
)
def test_throttle_counters_live_in_redis_when_one_is_configured(settings_: dict[str, str], expected: str) -> None:
    assert storage_uri(settings_) == expected


# -- metrics ----------------------------------------------------------------------------------------


def test_metrics_are_served_to_this_machine_only_without_a_token(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403 and b"lifeboat_runs" not in remote.data
    assert b"LIFEBOAT_METRICS_TOKEN" in remote.data
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403


def test_metrics_need_the_bearer_token_when_one_is_set(app: Flask) -> None:
    app.config["METRICS_TOKEN"] = "s3cret-scrape-token"
    client = app.test_client()
    assert client.get("/metrics").status_code == 401  # loopback is not enough once a token is set
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    good = client.get(
        "/metrics",
        headers={"Authorization": "Bearer s3cret-scrape-token"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert good.status_code == 200 and b"lifeboat_runs" in good.data


def test_metrics_token_comes_from_the_environment() -> None:
    assert config.load("/tmp/x", {"LIFEBOAT_METRICS_TOKEN": "abc"})["METRICS_TOKEN"] == "abc"
