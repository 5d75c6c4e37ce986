"""A CLI command that mails links while LIFEBOAT_BASE_URL is unset says so, once, in one line.

User trial 7: the scrub alert that `lifeboat scrub` mailed linked to
http://127.0.0.1:5000/settings/destinations (BASE_URL's default) while the
service ran on port 5077, and nothing told the operator.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

import jobs
from account.records import Account
from jobs.commands.base_url import warn_when_mailing
from tests.delivery.test_scrub import delivered
from tests.servers.s3 import MotoS3
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.server
NOTE = (
    "Note: LIFEBOAT_BASE_URL is not set, so links in the email it sent point at the default address "
    "http://127.0.0.1:5000; set LIFEBOAT_BASE_URL to the address people reach Lifeboat at."
)


@pytest.fixture
def mailing_app(bucket_app: Flask, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.delenv("LIFEBOAT_BASE_URL", raising=False)
    monkeypatch.delenv("LIFEBOAT_BASE_URL_FILE", raising=False)
    bucket_app.config.update(
        SMTP_HOST=smtp_server.host, SMTP_PORT=smtp_server.port, SMTP_SECURITY="none", MAIL_FROM="lifeboat@example.com"
    )
    jobs.init_app(bucket_app)
    return bucket_app


@pytest.fixture
def scrub_a_changed_copy(
    mailing_app: Flask, alice: Account, moto_server: MotoS3, s3_bucket: str, runner: FlaskCliRunner
) -> Callable[[], str]:
    """Deliver alice's archive, change the copy, and run `lifeboat scrub`, which mails an alert: its stderr."""

    def scrub() -> str:
        _, _, key = delivered(mailing_app, alice, moto_server, s3_bucket)
        moto_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"corrupted")
        result = runner.invoke(args=["scrub", "alice@example.com"])
        assert result.exit_code == 1 and "CHANGED" in result.stdout, result.output
        return result.stderr

    return scrub


def test_scrub_that_mails_an_alert_warns_once_that_its_links_use_the_default_address(
    scrub_a_changed_copy: Callable[[], str], smtp_server: SmtpServer
) -> None:
    stderr = scrub_a_changed_copy()

    assert [line for line in stderr.splitlines() if line.startswith("Note:")] == [NOTE]
    (alert,) = (m.message() for m in smtp_server.received if "changed" in str(m.message()["Subject"]))
    assert "http://127.0.0.1:5000/" in alert.get_content()


def test_scrub_says_nothing_of_the_address_when_base_url_is_set(
    mailing_app: Flask, scrub_a_changed_copy: Callable[[], str], smtp_server: SmtpServer
) -> None:
    mailing_app.config["BASE_URL"] = "https://lifeboat.example.org"
    jobs.init_app(mailing_app)

    stderr = scrub_a_changed_copy()

    assert "Note:" not in stderr
    assert any("https://lifeboat.example.org/" in m.message().get_content() for m in smtp_server.received)


def test_the_warning_comes_once_however_many_mails_with_links_a_command_sends(
    mailing_app: Flask, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `scheduler` does before it runs exports: failure notices and alerts then warn once.
    with mailing_app.app_context():
        ctx = jobs.get_context(mailing_app)
        warn_when_mailing(ctx)
        assert capsys.readouterr().err == ""  # nothing mailed yet: nothing said
        for n in range(3):
            assert ctx.send_notice("alice@example.com", f"alert {n}", "See http://127.0.0.1:5000/settings\n")

    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("Note:")] == [NOTE]
    assert len(smtp_server.received) == 3
