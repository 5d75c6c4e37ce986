"""`lifeboat serve --host/--port`: pages and links use the address it listens on, unless the operator set one.

Why a real `serve`: the user-visible fault was the /automate page of a server
started with --port showing port 5000, which only the real command shows.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.request import urlopen

import pytest
from flask import Flask

import jobs
from cli import follow_listener
from jobs import get_context, run_lifecycle
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.execute import execute_run
from store import User, get_db
from store.base import utcnow
from tests.servers.smtp import REJECT_RCPT, SmtpServer
from tests.web.live_server import serve


def _automate_base(url: str) -> set[str]:
    with urlopen(f"{url}/automate", timeout=30) as answer:
        page = answer.read().decode()
    return set(re.findall(r"(https?://[^\s\"'<]+)/api/v1", page))


@pytest.mark.server
def test_serve_on_another_port_shows_that_port_on_the_automate_page(tmp_path: Path) -> None:
    with serve({"INSTANCE_DIR": str(tmp_path / "instance"), "EMBEDDED_WORKERS": "1"}, threads=2) as served:
        assert ":5000" not in served.url
        assert _automate_base(served.url) == {served.url}


@pytest.mark.server
def test_serve_keeps_a_base_url_the_operator_set(tmp_path: Path) -> None:
    settings = {
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "EMBEDDED_WORKERS": "1",
        "BASE_URL": "https://backup.example.org",
    }
    with serve(settings, threads=2) as served:
        assert _automate_base(served.url) == {"https://backup.example.org"}


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),  # noqa: S104  (the option's value, not a bind)
        ("::", "http://[::1]:8080"),
        ("::1", "http://[::1]:8080"),
        ("backup.lan", "http://backup.lan:8080"),
    ],
)
def test_the_default_base_url_follows_host_and_port(
    app: Flask, monkeypatch: pytest.MonkeyPatch, host: str, url: str
) -> None:
    monkeypatch.delenv("LIFEBOAT_BASE_URL", raising=False)
    follow_listener(app, host, 8080)
    assert app.config["BASE_URL"] == url


def test_a_base_url_set_in_the_environment_or_the_config_is_kept(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEBOAT_BASE_URL", "http://127.0.0.1:5000")  # the default's value, but chosen
    follow_listener(app, "127.0.0.1", 8080)
    assert app.config["BASE_URL"] == "http://127.0.0.1:5000"
    monkeypatch.delenv("LIFEBOAT_BASE_URL")
    app.config["BASE_URL"] = "https://backup.example.org"
    follow_listener(app, "127.0.0.1", 8080)
    assert app.config["BASE_URL"] == "https://backup.example.org"


@pytest.mark.server
def test_a_failure_notice_links_to_the_port_serve_listens_on_not_5000(
    app: Flask, alice_user: int, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trial: `serve --port 5077` mailed "See the details … at http://127.0.0.1:5000/" after a failed delivery."""
    monkeypatch.delenv("LIFEBOAT_BASE_URL", raising=False)
    app.config.update(SMTP_HOST=smtp_server.host, SMTP_PORT=smtp_server.port, SMTP_SECURITY="none", EMBEDDED_WORKERS=0)
    jobs.init_app(app)  # the job context is built with the app, before `serve` knows its port
    follow_listener(app, "127.0.0.1", 5077)  # what `serve --port 5077` does next
    jobs.start_embedded(app)  # and then, in its worker
    try:
        assert get_context(app).base_url == "http://127.0.0.1:5077"  # missed-run and scrub alerts' links
    finally:
        app.extensions[jobs.EXTENSION]["runtime"].shutdown(wait=False)
    db = get_db(app)
    with db.session(write=True) as session:
        user = session.get(User, alice_user)
        assert user is not None
        add_destination(session, Registry(dict(app.config)), user, "email", "me", {})
        run, _ = run_lifecycle.request_run(session, alice_user, "manual", now=utcnow())
        run_id = run.id
    smtp_server.script(REJECT_RCPT)  # the archive's mail is refused for good: the run fails, the user is told
    assert execute_run(get_context(app), run_id, "test-worker") == "failed"
    notice = smtp_server.received[-1].message().get_body(("plain",))
    assert notice is not None
    text = notice.get_content()
    assert "Lifeboat made your archive, but could not deliver it" in text  # only the delivery failed
    assert "http://127.0.0.1:5077/archives" in text
    assert "http://127.0.0.1:5077/" in text and ":5000" not in text
