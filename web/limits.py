"""Sign-in throttling: per account and per client address, counted on failures only.

Why failures only: a person who types the right password is never slowed
down, while guessing is capped both per account (one victim, many guesses)
and per address (one machine, many accounts). Once a limit is reached, even
the right password is refused until the window passes, or a guesser would
learn when they hit it.

Why Redis when configured: with several web processes, in-memory counters
would each allow the full budget. The storage is the Redis named by
LIFEBOAT_REDIS_URL, else the Celery broker when that is Redis, else memory
(the embedded single-process default).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response


def account_limits() -> str:
    """Failed sign-ins allowed per account (LIFEBOAT_LOGIN_ACCOUNT_LIMITS)."""
    return str(current_app.config["LOGIN_ACCOUNT_LIMITS"])


def address_limits() -> str:
    """Failed sign-ins allowed per client address (LIFEBOAT_LOGIN_ADDRESS_LIMITS)."""
    return str(current_app.config["LOGIN_ADDRESS_LIMITS"])


# The error message of `web.destination_limits.limit_links`, by which a 429 is worded for it.
TOO_MANY_LINKS = "Too many confirmation links went to this address."


def mail_account_limits() -> str:
    """Sign-up and reset emails one address may receive (LIFEBOAT_ACCOUNT_MAIL_ACCOUNT_LIMITS)."""
    return str(current_app.config["ACCOUNT_MAIL_ACCOUNT_LIMITS"])


def mail_address_limits() -> str:
    """Sign-up and reset requests per client address (LIFEBOAT_ACCOUNT_MAIL_ADDRESS_LIMITS)."""
    return str(current_app.config["ACCOUNT_MAIL_ADDRESS_LIMITS"])


def mail_account_key() -> str:
    """The address a sign-up or reset request would send mail to; every request counts.

    Why every request and not failures: each one may send an email, and the
    answer is the same whether or not the address has an account, so there is
    no "failure" to count without revealing which it was.
    """
    return "mail-to:" + (request.form.get("email") or "").strip().lower()[:320]


def mail_address_key() -> str:
    return "mail-from:" + (get_remote_address() or "unknown")


def storage_uri(config: Mapping[str, Any]) -> str:
    """The limits storage: LIFEBOAT_REDIS_URL, else a Redis Celery broker, else memory."""
    for candidate in (config.get("REDIS_URL"), config.get("CELERY_BROKER_URL")):
        if candidate and str(candidate).startswith(("redis://", "rediss://", "unix://")):
            return str(candidate)
    return "memory://"


def account_key() -> str:
    """The account a sign-in names, spelled the way `find_user` would find it."""
    return "account:" + (request.form.get("email") or "").strip().lower()[:320]


def address_key() -> str:
    return "address:" + (get_remote_address() or "unknown")


def failed_sign_in(response: Response) -> bool:
    """A sign-in that did not redirect (wrong password, bad form, no CSRF token) failed."""
    return response.status_code != 302


def configure(app: Flask) -> None:
    """Point Flask-Limiter at the right storage and answer 429 with a page that says when."""
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app.config)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "lifeboat")
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    # A Redis outage must not lock everyone out (or crash sign-in): count in memory meanwhile.
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    app.register_error_handler(RateLimitExceeded, too_many_attempts)


def too_many_attempts(error: RateLimitExceeded) -> Response:
    """Say plainly why sign-in is refused and when it will work again."""
    from web import limiter

    current = limiter.current_limit
    reset_at = current.reset_at if current is not None else int(time.time()) + 60
    # Never longer than the limit's own window: Redis rounds its expiry up a second, which
    # would turn a one-minute pause into "2 minutes".
    window = current.limit.get_expiry() if current is not None else 60
    wait = max(1, min(reset_at - int(time.time()), window))
    reset_at = int(time.time()) + wait
    minutes = math.ceil(wait / 60)
    when = dt.datetime.fromtimestamp(reset_at, dt.UTC).strftime("%H:%M UTC")
    again = f"try again in {minutes} minute{'s' if minutes != 1 else ''} (after {when})."
    if request.endpoint in ("auth.login", "account.change_password", "staff_auth.second_factor"):
        title = "Too many sign-in attempts"
        message = f"Too many failed sign-in attempts. For your account's safety, sign-in is paused: {again}"
    elif error.description == TOO_MANY_LINKS:  # `web.destination_limits`
        title = "Too many confirmation links"
        message = f"{TOO_MANY_LINKS} To protect its mailbox, no more are sent there for now: {again}"
    else:
        title = "Too many requests"
        message = f"Too many requests of this kind. To protect everyone's mailbox, please wait: {again}"
    from web.error_pages import render

    response = render(429, "too_many_requests", title, message)
    response.headers["Retry-After"] = str(wait)
    return response
