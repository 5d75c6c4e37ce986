"""The command line: import-account, export, verify, restore, on a real SQLite file."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import errno
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from account.records import Account
from exporters.archive.check import check_archive
from exporters.archive.manifest import RESERVED_NAMES, ArchiveError, parse_manifest
from exporters.archive.reader import verify_archive
from exporters.archive.signature import UNSIGNED_LINE
from exporters.archive.writer import Entry
from jobs import get_context
from store import Database, ExportFidelity, ExportRun, User
from store.accounts import AccountReader, find_user
from store.passwords import hash_password
from tests.archives import archive_of, write_archive
from tests.web.conftest import PASSWORD, sign_in


def _export(runner: FlaskCliRunner, email: str, *args: str) -> Path:
    result = runner.invoke(args=["export", email, *args])
    assert result.exit_code == 0, result.output
    return Path(result.output.splitlines()[0])


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_import_export_restore_export_gives_the_same_files(
    app: Flask,
    runner: FlaskCliRunner,
    db: Database,
    alice: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    now: dt.datetime,
) -> None:
    # Events without a timestamp of their own carry the export time as DTSTAMP (RFC 5545),
    # so both exports must happen at the same instant for their calendars to be identical.
    monkeypatch.setattr(get_context(app), "clock", lambda: now)  # an export is a run: its clock
    result = runner.invoke(args=["import-account", "tests/data/alice.json"])
    assert result.exit_code == 0, result.output
    assert "3 contacts, 4 events in 2 calendars, 3 notes" in result.output
    first = _export(runner, "alice@example.com")
    result = runner.invoke(args=["restore", str(first), "--email", " Copy@Example.com "])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Restored copy@example.com (a new account with its contacts, calendars, notes): ")
    assert "Note: the archive was made for alice@example.com; its data is now copy@example.com's." in result.output
    assert "\n  signed: manifest.json is what the service signed (key " in result.output  # this instance's key
    again = runner.invoke(args=["restore", str(first), "--email", "alice@example.com", "--replace"])
    assert again.output.startswith("Restored alice@example.com (replaced its ") and "Note:" not in again.output
    with db.session() as session:
        user = find_user(session, "copy@example.com")
        assert user is not None
        restored = AccountReader(session, user).account()
    assert restored.contacts == alice.contacts
    assert restored.calendars == alice.calendars
    assert restored.notes == alice.notes
    assert (restored.display_name, restored.timezone) == (alice.display_name, alice.timezone)
    second = _export(runner, "copy@example.com")
    a, b = _members(first), _members(second)
    assert a.keys() == b.keys()
    # Every data file is byte-identical; only the manifest/README (owner, time) and its signature may differ.
    for name in a.keys() - {"manifest.json", "manifest.json.sig", "README.txt", "SHA256SUMS"}:
        assert a[name] == b[name], name


def test_restore_says_an_unsigned_archive_is_unsigned_and_refuses_a_signature_that_does_not_hold(
    runner: FlaskCliRunner, alice: Account, tmp_path: Path, now: dt.datetime
) -> None:
    unsigned = archive_of(alice, tmp_path, "unsigned.zip", now)  # as written without a signing key
    result = runner.invoke(args=["restore", str(unsigned), "--email", "copy@example.com"])
    assert result.exit_code == 0, result.output
    assert f"  {UNSIGNED_LINE}" in result.output
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    signed = _export(runner, "alice@example.com")
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(signed) as source, zipfile.ZipFile(forged, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "manifest.json.sig":  # the digest it claims kept, the signature bytes replaced
                document = json.loads(data)
                document["signature"] = base64.b64encode(bytes(64)).decode()
                data = json.dumps(document).encode()
            target.writestr(info, data)
    refused = runner.invoke(args=["restore", str(forged), "--email", "copy@example.com", "--replace"])
    assert refused.exit_code == 1 and "manifest.json is not what the service signed" in refused.output
    assert "Traceback" not in refused.output


def _contacts_of(db: Database, email: str) -> int:
    with db.session() as session:
        user = find_user(session, email)
        assert user is not None
        return AccountReader(session, user).counts().contacts


def test_restore_into_an_account_holding_data_is_refused_without_replace_naming_whose_archive_it_is(
    runner: FlaskCliRunner, db: Database, alice: Account, tmp_path: Path, now: dt.datetime
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    bobs = dataclasses.replace(alice, email="bob@example.com", contacts=alice.contacts[:1])
    archive = archive_of(bobs, tmp_path, "bob.zip", now)
    refused = runner.invoke(args=["restore", str(archive), "--email", "alice@example.com"])
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1, refused.output
    assert refused.output == (
        "Error: alice@example.com already holds 3 contacts, 4 events in 2 calendars, 3 notes, 1 attachment; "
        "the archive was made for bob@example.com, not alice@example.com. Nothing was changed: "
        "add --replace to replace its data with the archive's, or give another --email.\n"
    )
    assert _contacts_of(db, "alice@example.com") == 3
    replaced = runner.invoke(args=["restore", str(archive), "--email", "alice@example.com", "--replace"])
    assert replaced.exit_code == 0 and replaced.output.startswith("Restored alice@example.com (replaced its ")
    assert _contacts_of(db, "alice@example.com") == 1


def test_restore_of_an_own_archive_into_an_account_holding_data_names_only_the_flag(
    runner: FlaskCliRunner, db: Database
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    archive = _export(runner, "alice@example.com")
    refused = runner.invoke(args=["restore", str(archive), "--email", "alice@example.com"])
    assert refused.exit_code == 1 and "already holds 3 contacts" in refused.output
    assert "made for" not in refused.output and "add --replace" in refused.output


def test_restore_of_its_own_archive_into_an_existing_account_that_holds_nothing_needs_no_flag_and_says_into(
    runner: FlaskCliRunner, db: Database, alice: Account, tmp_path: Path, now: dt.datetime
) -> None:
    with db.session(write=True) as session:
        session.add(User(email="empty@example.com"))
    archive = archive_of(dataclasses.replace(alice, email="empty@example.com"), tmp_path, "own.zip", now)
    result = runner.invoke(args=["restore", str(archive), "--email", "empty@example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Restored into empty@example.com, an account that held nothing (contacts, calendars, notes): "
    )
    assert "replaced" not in result.output
    assert _contacts_of(db, "empty@example.com") == 3


def test_restore_of_another_persons_archive_into_an_existing_empty_account_is_refused_without_replace(
    runner: FlaskCliRunner, db: Database, alice: Account, tmp_path: Path, now: dt.datetime
) -> None:
    with db.session(write=True) as session:
        session.add(User(email="bob@example.com"))
    archive = archive_of(alice, tmp_path, "alice.zip", now)
    refused = runner.invoke(args=["restore", str(archive), "--email", "bob@example.com"])
    assert refused.exit_code == 1, refused.output
    assert refused.output == (
        "Error: bob@example.com is an existing account and the archive was made for alice@example.com. "
        "Nothing was changed: add --replace to restore alice@example.com's archive into bob@example.com, "
        "or give another --email.\n"
    )
    assert _contacts_of(db, "bob@example.com") == 0
    result = runner.invoke(args=["restore", str(archive), "--email", "bob@example.com", "--replace"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Restored into bob@example.com, an account that held nothing (")
    assert "replaced" not in result.output
    assert "Note: the archive was made for alice@example.com; its data is now bob@example.com's." in result.output
    assert _contacts_of(db, "bob@example.com") == 3


@pytest.mark.parametrize("email", ["", " ", "not-an-email", "x y@@example.com"])
def test_restore_refuses_an_address_that_is_not_one_in_one_line_and_changes_nothing(
    runner: FlaskCliRunner, db: Database, email: str
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    archive = _export(runner, "alice@example.com")
    with db.session() as session:
        before = AccountReader(session, find_user(session, "alice@example.com")).account()  # type: ignore[arg-type]
    result = runner.invoke(args=["restore", str(archive), "--email", email])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Error: --email: ") and "Traceback" not in result.output
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1
        assert AccountReader(session, find_user(session, "alice@example.com")).account() == before  # type: ignore[arg-type]


def test_export_prints_a_verified_archive_path_and_can_copy_it_out(runner: FlaskCliRunner, tmp_path: Path) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    out = tmp_path / "out"
    path = _export(runner, "alice@example.com", "--out", str(out))
    assert path.parent == out and path.name.startswith("lifeboat-alice-") and path.suffix == ".zip"
    assert path.stat().st_mode & 0o777 == 0o600  # all of the user's data: owner-only, as in the instance folder
    result = runner.invoke(args=["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "3 notes" in result.output
    assert not list(out.glob(".*"))  # no partial file left behind


@pytest.mark.parametrize("deliver", [[], ["--deliver"]])
def test_an_export_without_out_says_its_path_is_the_services_stored_copy_and_names_out(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, deliver: list[str]
) -> None:
    """A user trial took the printed path for their own copy (the README's `archive=$(… | head -n 1)`)."""
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    stored = runner.invoke(args=["export", "alice@example.com", *deliver])
    assert stored.exit_code == 0, stored.output
    first, second = stored.output.splitlines()[:2]
    assert Path(first).is_relative_to(app.config["ARCHIVE_DIR"])  # the service's own file, still first for scripts
    assert second == (
        "  That is Lifeboat's own stored copy (its downloads and History use it): do not move or delete it. "
        "For a copy of your own, add --out DIR."
    )
    own = runner.invoke(args=["export", "alice@example.com", *deliver, "--out", str(tmp_path / "mine")])
    assert own.exit_code == 0, own.output
    assert Path(own.output.splitlines()[0]).parent == tmp_path / "mine" and "stored copy" not in own.output


def test_an_export_without_deliver_is_a_run_history_lists_with_its_drill_and_sends_nothing(
    app: Flask, runner: FlaskCliRunner, db: Database, tmp_path: Path
) -> None:
    """A bare export made an archive that History, the runs API and "Recent exports" never mentioned (user trial)."""
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    sent: list[object] = []

    def destinations(_session: object, _user: object) -> list[tuple[int, Any]]:
        sent.append("asked")  # a destination would be handed the archive after this
        return []

    get_context(app).destinations = destinations
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with db.session() as session:
        (run,) = session.scalars(select(ExportRun))
        fidelity = session.scalar(select(ExportFidelity).where(ExportFidelity.run_id == run.id))
        assert (run.trigger, run.state, run.archive_id is not None) == ("cli-local", "delivered", True)
        assert run.history[-1].message.startswith("Not sent anywhere: exported at the command line without --deliver")
        assert fidelity is not None and fidelity.differences == 0
        run_id, archive_id = run.id, run.archive_id
    assert sent == []  # nothing left this machine
    assert f"Run {run_id} recorded in the user's History." in result.output
    assert "Read back" in result.output and "Not delivered: the archive stays on this machine" in result.output
    assert Path(result.output.splitlines()[0]).parent == tmp_path
    with db.session(write=True) as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    client = app.test_client()
    assert sign_in(client).status_code == 302
    history = client.get("/history").get_data(as_text=True)
    assert f'id="run-{run_id}"' in history
    assert f'href="/runs/{run_id}"' in client.get("/").get_data(as_text=True)  # "Recent exports"
    run_page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Read back" in run_page and f"/archives/{archive_id}" in run_page
    assert "Command line, kept here and sent nowhere" in run_page


def test_export_out_reads_the_copy_back_and_parses_every_file_only_with_check(
    runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    read_back: list[Path] = []
    parsed: list[Path] = []

    def verify(path: Path, **options: Any) -> Any:
        read_back.append(path)
        return verify_archive(path, **options)

    def check(path: Path, **options: Any) -> Any:
        parsed.append(path)
        return check_archive(path, **options)

    monkeypatch.setattr("jobs.commands.verify_archive", verify)
    monkeypatch.setattr("jobs.commands.check_archive", check)
    plain = _export(runner, "alice@example.com", "--out", str(tmp_path / "plain"))
    assert [p.parent for p in read_back] == [plain.parent] and not parsed
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path / "checked"), "--check"])
    assert result.exit_code == 0, result.output
    assert "Checked: every file parses with independent parsers" in result.output
    assert parsed == [Path(result.output.splitlines()[0])] and len(read_back) == 2
    result = runner.invoke(args=["export", "alice@example.com", "--check"])  # the stored archive itself
    assert result.exit_code == 0, result.output
    assert parsed[-1] == Path(result.output.splitlines()[0]) and len(parsed) == 2


def test_a_copy_that_does_not_read_back_is_removed_and_named(
    runner: FlaskCliRunner, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])

    def damaged(path: Path, **options: Any) -> Any:
        raise ArchiveError("README.txt: SHA-256 does not match manifest.json (the file was changed or damaged)")

    monkeypatch.setattr("jobs.commands.verify_archive", damaged)
    out = tmp_path / "out"
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(out)])
    assert result.exit_code == 1
    assert f"The copy in {out} does not verify, so it was removed: README.txt: SHA-256" in result.output
    assert "The archive was made and is kept on the server at " in result.output
    assert not list(out.iterdir()) and "Traceback" not in result.output
    with db.session() as session:
        assert session.scalars(select(ExportRun.state)).all() == ["failed"]


def test_an_out_folder_that_cannot_be_made_is_refused_in_one_line_before_any_run(
    runner: FlaskCliRunner, db: Database, tmp_path: Path
) -> None:
    """`--out /proc/nope` said only "No such file or directory", yet recorded a delivered run (user trial)."""
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    (tmp_path / "a-file").write_bytes(b"")
    out = tmp_path / "a-file" / "sub"
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(out)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --out {out}: the folder cannot be made (Not a directory). "
        "Give --out a folder this user can write to, or create it first.\n"
    )
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ExportRun)) == 0  # nothing exported


def test_a_copy_that_cannot_be_written_fails_the_run_and_says_where_the_archive_is_kept(
    app: Flask, runner: FlaskCliRunner, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive is made and kept; the copy into --out was the point, so History must not say delivered."""
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    _disk_full_for_copies(monkeypatch)
    out = tmp_path / "out"
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(out)])
    assert result.exit_code == 1
    with db.session() as session:
        (run,) = session.scalars(select(ExportRun))
        archive = run.archive
        assert (run.trigger, run.state, archive is not None) == ("cli-local", "failed", True)
        assert archive is not None
        kept = get_context(app).files.local_path(archive.relpath)
        assert kept is not None and kept.is_file()
        assert run.error == (
            f"Cannot write the copy into {out}: No space left on device. The archive was made and is kept on the "
            f"server ({archive.filename}): download it from Archives."
        )
        assert run.history[-1].message == run.error
        run_id, filename = run.id, archive.filename
    assert result.output == (
        f"Error: Cannot write the copy into {out}: No space left on device. The archive was made and is kept on "
        f"the server at {kept} (fetch it with cp {kept} DIR/{filename}); run {run_id} is recorded as failed.\n"
    )
    assert not list(out.iterdir())  # no partial copy left behind


def test_with_deliver_a_copy_that_cannot_be_written_says_where_the_archive_is_kept_and_how_the_run_ended(
    app: Flask, runner: FlaskCliRunner, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run delivered (or not) on its own: its state stays; the one line says what happened to the copy."""
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    _disk_full_for_copies(monkeypatch)
    out = tmp_path / "out"
    result = runner.invoke(args=["export", "alice@example.com", "--deliver", "--out", str(out)])
    assert result.exit_code == 1
    with db.session() as session:
        (run,) = session.scalars(select(ExportRun))
        assert run.archive is not None and run.state == "delivered"  # no destinations: nothing failed to arrive
        kept = get_context(app).files.local_path(run.archive.relpath)
        run_id, said = run.id, run.history[-1].message
    assert result.output == (
        f"Error: Cannot write the copy into {out}: No space left on device. The archive is kept on the server at "
        f"{kept}; run {run_id} delivered: {said}\n"
    )


def test_two_exports_of_one_user_in_the_same_second_do_not_share_a_partial_copy(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both name their copy `lifeboat-alice-<second>.zip`; the one still copying must not lose its file."""
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    now = dt.datetime(2026, 12, 7, 2, 35, 5, tzinfo=dt.UTC)
    monkeypatch.setattr(get_context(app), "clock", lambda: now)  # the run's clock names the archive
    out = tmp_path / "out"
    out.mkdir()
    other = out / ".lifeboat-alice-20261207T023505Z.zip.partial"  # the other export, half-way through its copy
    other.write_bytes(b"PK the other export's bytes so far")
    path = _export(runner, "alice@example.com", "--out", str(out))
    assert path == out / "lifeboat-alice-20261207T023505Z.zip"
    verify_archive(path)
    assert other.read_bytes() == b"PK the other export's bytes so far"


@pytest.mark.parametrize("processes", ["1", "2"])
def test_verify_fails_with_a_clear_message_on_a_flipped_byte(
    runner: FlaskCliRunner, tmp_path: Path, processes: str
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    path = _export(runner, "alice@example.com", "--out", str(tmp_path))
    members = _members(path)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in members.items():
            if name == "calendars/Personal.ics":
                data = data.replace(b"Weekly sync", b"Weekly sunc")
            archive.writestr(name, data)
    result = runner.invoke(args=["verify", "--processes", processes, str(broken)])
    assert result.exit_code == 1
    # One line, the reason after NOT OK (it was on a second line: user trial).
    assert result.output == (
        f"Error: {broken}: NOT OK: calendars/Personal.ics: SHA-256 does not match manifest.json "
        "(the file was changed or damaged)\n"
    )


@pytest.mark.parametrize("processes", ["1", "2"])
def test_verify_reports_a_file_no_parser_accepts(
    runner: FlaskCliRunner, tmp_path: Path, now: Any, processes: str
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    path = _export(runner, "alice@example.com", "--out", str(tmp_path))
    members = _members(path)
    meta = dict(parse_manifest(members["manifest.json"]).meta)
    members["calendars/Work.ics"] = b"BEGIN:VCALENDAR\r\nthis is not icalendar\r\n"
    # Checksums are all correct (the archive writer computes them); only the content is bad.
    entries = [Entry(name, [data]) for name, data in members.items() if name not in RESERVED_NAMES]
    forged = write_archive(tmp_path, "forged.zip", entries, meta, now).path
    result = runner.invoke(args=["verify", "--processes", processes, str(forged)])
    assert result.exit_code == 1
    assert "calendars/Work.ics" in result.output and result.output.startswith(f"Error: {forged}: NOT OK: ")
    assert result.output.count("\n") == 1  # one line, however many problems


def test_import_of_an_invalid_file_names_each_problem_and_changes_nothing(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    alice_json["contacts"][0]["birthday"] = "yesterday"
    alice_json["notes"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(alice_json))
    result = runner.invoke(args=["import-account", str(bad)])
    assert result.exit_code == 1
    assert "$.contacts[0].birthday" in result.output and "YYYY-MM-DD" in result.output
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        assert AccountReader(session, user).counts().notes == 3


def test_export_of_an_unknown_user_says_how_to_create_one(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["export", "nobody@example.com"])
    assert result.exit_code == 1
    assert "import-account" in result.output


@pytest.mark.parametrize("command", [["export"], ["schedule"], ["scrub"], ["destination", "list"]])
def test_a_value_that_is_no_email_address_is_said_to_be_none_not_an_unknown_user(
    runner: FlaskCliRunner, command: list[str]
) -> None:
    """A user trial: `lifeboat export not-an-email` answered "No user 'not-an-email'. Import one …"."""
    result = runner.invoke(args=[*command, "not-an-email"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: 'not-an-email' is not an email address (An email address must have an @-sign.): "
        "give the email address the account signs in with.\n"
    )


def test_log_lines_are_json_with_the_run_id() -> None:
    import logging

    from logs import JsonFormatter

    record = logging.makeLogRecord(
        {"name": "lifeboat.run", "msg": "run started", "levelname": "INFO", "run_id": "abc123"}
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "run started" and line["run_id"] == "abc123" and line["level"] == "info"


def test_db_upgrade_refuses_until_everyone_has_a_fresh_archive(runner: FlaskCliRunner, monkeypatch: Any) -> None:
    from store import migrate

    runner.invoke(args=["import-account", "tests/data/alice.json"])
    upgraded: list[bool] = []
    monkeypatch.setattr(migrate, "pending", lambda _db: True)  # pretend a new migration shipped
    monkeypatch.setattr(migrate, "upgrade", lambda _db: upgraded.append(True))
    refused = runner.invoke(args=["db", "upgrade"])
    assert refused.exit_code == 1 and "alice@example.com" in refused.output and "export-all" in refused.output
    assert not upgraded
    result = runner.invoke(args=["export-all", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "1 of 1 user(s) now have a fresh verified archive" in result.output
    again = runner.invoke(args=["export-all"])
    assert "already has a fresh verified archive" in again.output  # resumable: nothing left to do
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0 and upgraded == [True]


def test_scheduler_once_queues_due_runs(runner: FlaskCliRunner, db: Database) -> None:
    import datetime as dt

    from store import ExportRun, Schedule

    runner.invoke(args=["import-account", "tests/data/alice.json"])
    with db.session(write=True) as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        session.add(
            Schedule(
                user_id=user.id,
                frequency="daily",
                time_of_day="02:00",
                timezone="UTC",
                weekday=0,
                day_of_month=1,
                enabled=True,
                next_run_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            )
        )
    result = runner.invoke(args=["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 run(s) queued from schedules" in result.output
    with db.session() as session:
        assert session.query(ExportRun).count() == 1


def test_schedule_sets_shows_changes_and_switches_off_with_the_next_run_recomputed(
    runner: FlaskCliRunner, db: Database
) -> None:
    from store import Schedule

    runner.invoke(args=["import-account", "tests/data/alice.json"])
    assert "No export schedule." in runner.invoke(args=["schedule", "alice@example.com"]).output

    def stored() -> Schedule:
        with db.session() as session:
            row = session.query(Schedule).one()
            session.expunge(row)
            return row

    result = runner.invoke(args=["schedule", "alice@example.com", "--every", "daily", "--at", "02:00"])
    assert result.exit_code == 0, result.output
    first = stored()
    assert (first.frequency, first.time_of_day, first.timezone, first.enabled) == (
        "daily",
        "02:00",
        "Europe/Berlin",
        True,
    )
    assert first.next_run_at is not None and "Next run:" in result.output and "Europe/Berlin" in result.output

    result = runner.invoke(args=["schedule", "alice@example.com", "--at", "14:30", "--timezone", "Asia/Tokyo"])
    assert result.exit_code == 0, result.output
    moved = stored()
    assert (moved.frequency, moved.time_of_day, moved.timezone) == ("daily", "14:30", "Asia/Tokyo")
    assert moved.next_run_at is not None and moved.next_run_at != first.next_run_at  # recomputed at once

    bad = runner.invoke(args=["schedule", "alice@example.com", "--at", "25:00", "--timezone", "Mars/Olympus"])
    assert bad.exit_code == 1
    assert bad.output == (  # one line, each problem once, by its option
        "Error: --at: Give the time as HH:MM on a 24-hour clock, such as 02:00 or 23:30, not '25:00'; "
        "--timezone: 'Mars/Olympus' is not a time zone name; use one such as Europe/Berlin or America/New_York.\n"
    )
    assert stored().time_of_day == "14:30"  # nothing changed
    bad = runner.invoke(args=["schedule", "alice@example.com", "--at", "25:00"])
    assert (bad.exit_code, bad.output) == (  # the summary and the field said it twice, on two lines (user trial)
        1,
        "Error: --at: Give the time as HH:MM on a 24-hour clock, such as 02:00 or 23:30, not '25:00'.\n",
    )

    result = runner.invoke(args=["schedule", "alice@example.com", "--off"])
    assert result.exit_code == 0 and "Switched off." in result.output
    off = stored()
    assert not off.enabled and off.next_run_at is None


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("UTC", r"Next run: \d{4}-\d\d-\d\d 04:[0-5]\d UTC\.$"),
        # 02:xx or 03:xx UTC: Berlin is UTC+1 in winter, UTC+2 in summer (the next run is tomorrow's).
        ("Europe/Berlin", r"Next run: [-\d]{10} 04:[0-5]\d Europe/Berlin \([-\d]{10} 0[23]:[0-5]\d UTC\)\.$"),
    ],
)
def test_schedule_shows_the_next_run_in_utc_only_once_for_a_user_in_utc(
    runner: FlaskCliRunner, zone: str, shown: str
) -> None:
    runner.invoke(args=["import-account", "tests/data/alice.json"])
    result = runner.invoke(
        args=["schedule", "alice@example.com", "--every", "daily", "--at", "04:00", "--timezone", zone]
    )
    assert result.exit_code == 0, result.output
    assert re.search(shown, result.output.strip()), result.output


def test_a_next_run_on_utc_plus_0_outside_utc_says_it_is_the_same_in_utc() -> None:
    from jobs.user_schedule import next_run_text

    winter = dt.datetime(2026, 12, 7, 4, 2, tzinfo=dt.UTC)
    assert next_run_text(winter, "Europe/London") == "2026-12-07 04:02 Europe/London (the same in UTC)"
    assert next_run_text(winter, "Etc/UTC") == "2026-12-07 04:02 Etc/UTC"
    summer = dt.datetime(2026, 7, 7, 3, 2, tzinfo=dt.UTC)
    assert next_run_text(summer, "Europe/London") == "2026-07-07 04:02 Europe/London (2026-07-07 03:02 UTC)"


def _disk_full_for_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy into --out fails as on a full disk (the archive itself is written elsewhere)."""

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("jobs.commands.shutil.copyfileobj", full)
