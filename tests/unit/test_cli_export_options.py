"""`flask export --deliver`, `--vcard-version` and `archive-options`: what the CLI delivers, in which vCard version."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

import jobs
from jobs import run_lifecycle
from jobs.execute import execute_run
from store import Database, DeliveryAttempt, ExportRun, RunState
from store.accounts import find_user
from store.base import utcnow
from tests.servers.smtp import REJECT_DATA, TEMPFAIL_DATA, SmtpServer


@pytest.fixture
def mail_app(app: Flask, smtp_server: SmtpServer) -> Iterator[Flask]:
    app.config.update(
        ENCRYPTION_KEYS=[Fernet.generate_key().decode()],
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=smtp_server.port,
        SMTP_SECURITY="none",
        MAIL_FROM="lifeboat@example.com",
    )
    jobs.init_app(app)  # rebuild the job context from the updated configuration
    yield app


@pytest.fixture
def imported(runner: FlaskCliRunner) -> str:
    result = runner.invoke(args=["import-account", "tests/data/alice.json"])
    assert result.exit_code == 0, result.output
    return "alice@example.com"


def _vcard_version(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        cards = [n for n in archive.namelist() if n.endswith(".vcf")]
        text = archive.read(cards[0]).decode()
    versions = {line for line in text.splitlines() if line.startswith("VERSION:")}
    assert versions == {f"VERSION:{manifest['vcard_version']}"}, (versions, manifest["vcard_version"])
    return str(manifest["vcard_version"])


def _archive_path(output: str) -> Path:
    return Path(output.splitlines()[0])


def test_export_without_deliver_says_plainly_that_nothing_was_delivered(runner: FlaskCliRunner, imported: str) -> None:
    result = runner.invoke(args=["export", imported])
    assert result.exit_code == 0, result.output
    assert "Not delivered" in result.output and "--deliver" in result.output
    help_text = runner.invoke(args=["export", "--help"]).output
    assert "Without --deliver" in " ".join(help_text.split())


@pytest.mark.server
def test_export_deliver_sends_the_archive_through_a_real_run_and_prints_each_destination(
    mail_app: Flask, smtp_server: SmtpServer, db: Database, imported: str
) -> None:
    runner = mail_app.test_cli_runner()
    added = runner.invoke(args=["destination", "add-email", imported])
    assert added.exit_code == 0, added.output
    result = runner.invoke(args=["export", imported, "--deliver"])
    assert result.exit_code == 0, result.output
    assert _archive_path(result.output).is_file()
    lines = result.output.splitlines()
    assert lines[1].startswith("  That is Lifeboat's own stored copy")  # no --out: not a copy of the user's own
    assert lines[2].startswith("  Read back 12 items: 0 differences;")  # what the run's read-back found
    assert "delivered" in lines[3]
    assert len(smtp_server.received) == 1 and smtp_server.received[0].rcpt_tos == [imported]
    with db.session() as session:
        run = session.scalars(select(ExportRun)).one()
        assert (run.trigger, run.state, run.attempt) == ("cli", RunState.DELIVERED, 1)
        assert session.scalars(select(DeliveryAttempt.outcome)).all() == ["delivered"]


@pytest.mark.server
@pytest.mark.parametrize("script", [TEMPFAIL_DATA, REJECT_DATA])
def test_export_deliver_exits_non_zero_and_says_what_to_do_when_delivery_fails(
    mail_app: Flask, smtp_server: SmtpServer, db: Database, imported: str, script: str
) -> None:
    runner = mail_app.test_cli_runner()
    assert runner.invoke(args=["destination", "add-email", imported]).exit_code == 0
    smtp_server.handler.steps.append(script)
    result = runner.invoke(args=["export", imported, "--deliver"])
    assert result.exit_code != 0, result.output
    assert "failed" in result.output and "will try again" not in result.output
    assert "run this command again" in result.output
    assert smtp_server.received == []
    with db.session() as session:  # one attempt, final: nothing retries behind the user's back
        run = session.scalars(select(ExportRun)).one()
        assert run.state == RunState.FAILED and run.attempt == 1


def test_export_deliver_without_destinations_keeps_the_archive_and_says_so(
    runner: FlaskCliRunner, imported: str
) -> None:
    result = runner.invoke(args=["export", imported, "--deliver"])
    assert result.exit_code == 0, result.output
    assert "has no destinations" in result.output and _archive_path(result.output).is_file()


def test_export_deliver_refuses_while_another_export_is_active(
    runner: FlaskCliRunner, db: Database, imported: str
) -> None:
    with db.session(write=True) as session:
        user = find_user(session, imported)
        assert user is not None
        run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
    result = runner.invoke(args=["export", imported, "--deliver"])
    assert result.exit_code != 0 and "already queued" in result.output


def test_archive_options_shows_the_server_default_then_the_users_choice(runner: FlaskCliRunner, imported: str) -> None:
    shown = runner.invoke(args=["archive-options", imported])
    assert shown.exit_code == 0 and "vCard version: 3.0 (the server's default" in shown.output
    chosen = runner.invoke(args=["archive-options", imported, "--vcard-version", "4.0"])
    assert chosen.exit_code == 0 and "vCard version: 4.0 (chosen for alice@example.com)" in chosen.output
    assert "4.0 (chosen" in runner.invoke(args=["archive-options", imported]).output
    reset = runner.invoke(args=["archive-options", imported, "--vcard-version", "default"])
    assert "3.0 (the server's default" in reset.output
    refused = runner.invoke(args=["archive-options", imported, "--vcard-version", "2.1"])
    assert refused.exit_code != 0


def test_export_uses_the_users_vcard_version_unless_told_otherwise_once(runner: FlaskCliRunner, imported: str) -> None:
    assert _vcard_version(_archive_path(runner.invoke(args=["export", imported]).output)) == "3.0"
    runner.invoke(args=["archive-options", imported, "--vcard-version", "4.0"])
    assert _vcard_version(_archive_path(runner.invoke(args=["export", imported]).output)) == "4.0"
    once = runner.invoke(args=["export", imported, "--vcard-version", "3.0"])
    assert _vcard_version(_archive_path(once.output)) == "3.0"
    assert _vcard_version(_archive_path(runner.invoke(args=["export", imported]).output)) == "4.0"  # still theirs


def test_scheduled_runs_and_export_all_use_the_users_vcard_version(
    app: Flask, runner: FlaskCliRunner, db: Database, imported: str, archive_dir: Path
) -> None:
    runner.invoke(args=["archive-options", imported, "--vcard-version", "4.0"])
    result = runner.invoke(args=["export-all"])
    assert result.exit_code == 0, result.output
    with db.session(write=True) as session:
        user = find_user(session, imported)
        assert user is not None
        run = session.scalars(select(ExportRun)).one()
        assert run.archive is not None
        first = archive_dir / run.archive.relpath
        scheduled, _ = run_lifecycle.request_run(session, user.id, "schedule", now=utcnow())
    assert _vcard_version(first) == "4.0"
    assert execute_run(jobs.get_context(app), scheduled.id, "worker") == RunState.DELIVERED
    with db.session() as session:
        done = session.get(ExportRun, scheduled.id)
        assert done is not None and done.archive is not None
        assert _vcard_version(archive_dir / done.archive.relpath) == "4.0"
