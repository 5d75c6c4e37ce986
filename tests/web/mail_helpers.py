"""Account-mail helpers for web tests: point the app at a loopback aiosmtpd and read links from what it got."""

from __future__ import annotations

import re
import time

from flask import Flask

from tests.servers.smtp import Received, SmtpServer

BASE_URL = "http://lifeboat.test"


def use_mail_server(app: Flask, server: SmtpServer) -> None:
    """Send account mail to `server` (plain SMTP on loopback), with links under BASE_URL."""
    app.config.update(
        SMTP_HOST=server.host,
        SMTP_PORT=server.port,
        SMTP_SECURITY="none",
        MAIL_FROM="lifeboat@example.com",
        BASE_URL=BASE_URL,
    )


def wait_for_mail(server: SmtpServer, count: int = 1, timeout: float = 10.0) -> list[Received]:
    """The first `count` messages, waiting for the background sender (account mail leaves after the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        received = server.received
        if len(received) >= count:
            return received
        time.sleep(0.02)
    raise AssertionError(f"expected {count} message(s), got {len(server.received)}")


def assert_no_mail(server: SmtpServer, wait: float = 0.5) -> None:
    time.sleep(wait)
    assert server.received == []


def link_in(message: Received, path: str) -> str:
    """The path (for the test client) of the first link under BASE_URL + path in the message's text."""
    body = message.message().get_body(("plain",))
    assert body is not None
    match = re.search(re.escape(BASE_URL + path) + r"\S+", body.get_content())
    assert match, body.get_content()
    return match.group(0)[len(BASE_URL) :]
