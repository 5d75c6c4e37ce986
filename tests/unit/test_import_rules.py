"""The import rules seen from the command line and the store: every problem at once, the NUL rule, addresses.

Why through the CLI and a real SQLite file: the promise is about what a user
sees (one line per problem, no traceback, nothing written) and about what ends
up in the store and in archives, not only about `account.jsonio`.
"""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import update

from account.jsonio import account_from_dict
from account.records import MAX_FILE_BYTES, MAX_NOTE_TEXT_BYTES
from errors import InvalidInput
from exporters.archive.reader import MAX_WHOLE_MEMBER
from jobs.destination_backends import Registry
from jobs.destination_setup import add_destination
from jobs.export import export_user
from store import Database
from store.accounts import AccountReader, find_user, replace_account
from store.base import utcnow
from store.notes import NoteRow
from tests.unit.test_import import THREE_PROBLEMS, three_problem_file


def _write(tmp_path: Path, document: dict[str, Any], name: str = "account.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), "utf-8")
    return path


def test_import_account_lists_all_three_problems_one_per_line_and_writes_nothing(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    path = _write(tmp_path, three_problem_file(alice_json))
    result = runner.invoke(args=["import-account", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    lines = result.output.splitlines()
    assert lines[0] == f"Error: {path}: The account file has 3 problem(s)"
    assert lines[1:] == [f"  {where}: {what}" for where, what in THREE_PROBLEMS]
    with db.session() as session:
        assert find_user(session, "alice@example.com") is None


@pytest.mark.parametrize("address", ["alice", "alice@localhost", "alice@example.com, eve@example.com", "x@evil.test"])
def test_import_account_refuses_an_account_email_that_is_not_an_address(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path, address: str
) -> None:
    alice_json["email"] = address
    result = runner.invoke(args=["import-account", str(_write(tmp_path, alice_json))])
    assert result.exit_code == 1
    assert f"  $.email: {address!r} is not an email address" in result.output
    with db.session() as session:
        assert find_user(session, address) is None


def test_import_account_names_each_field_it_removed_control_characters_from(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    alice_json["contacts"][0]["formatted_name"] = "Ctl\x07Bell\x1bEsc\x7f"
    alice_json["notes"][0]["title"] = "ctl\x07bell"
    alice_json["notes"][0]["body"] = "a bell \x07 stays in a note's body\n"
    alice_json["calendars"][0]["events"][0]["summary"] = "Para\x85Nel"
    result = runner.invoke(args=["import-account", str(_write(tmp_path, alice_json))])
    assert result.exit_code == 0, result.output
    removed = "control characters removed (no vCard, iCalendar or YAML text can carry them)"
    for path in ("$.contacts[0].formatted_name", "$.calendars[0].events[0].summary", "$.notes[0].title"):
        assert f"  {path}: {removed}" in result.output, path
    assert "$.notes[0].body" not in result.output
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        account = AccountReader(session, user).account()
    assert (account.contacts[0].formatted_name, account.notes[0].title) == ("CtlBellEsc", "ctlbell")
    assert "\x07" in account.notes[0].body


def test_an_attendee_or_organizer_given_as_a_mailto_uri_is_kept_as_its_address(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    event = alice_json["calendars"][0]["events"][0]
    event["organizer"] = {"email": "MAILTO:al@example.com"}
    event["attendees"] = [{"email": "mailto:mailto:b@example.com"}, {"email": "urn:uuid:1234"}]
    result = runner.invoke(args=["import-account", str(_write(tmp_path, alice_json))])
    assert result.exit_code == 0, result.output
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        stored = AccountReader(session, user).account().calendars[0].events[0]
    assert stored.organizer is not None and stored.organizer.email == "al@example.com"
    assert [a.email for a in stored.attendees] == ["b@example.com", "urn:uuid:1234"]
    exported = runner.invoke(args=["export", "alice@example.com"])
    assert exported.exit_code == 0, exported.output
    assert "Read back" in exported.output and ": 0 differences" in exported.output


def test_import_account_reports_each_nul_it_replaced_by_path(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    alice_json["notes"][0]["body"] = "milk\x00eggs\n"
    alice_json["contacts"][0]["organization"] = "ACME\x00"
    result = runner.invoke(args=["import-account", str(_write(tmp_path, alice_json))])
    assert result.exit_code == 0, result.output
    assert "  $.contacts[0].organization: U+0000 replaced with U+FFFD" in result.output
    assert "  $.notes[0].body: U+0000 replaced with U+FFFD" in result.output
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        account = AccountReader(session, user).account()
    assert account.notes[0].body == "milk\ufffdeggs\n"
    assert account.contacts[0].organization == "ACME\ufffd"


def _export(runner: FlaskCliRunner, email: str) -> Path:
    result = runner.invoke(args=["export", email])
    assert result.exit_code == 0, result.output
    return Path(result.output.splitlines()[0])


def _markdown_files(archive: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name.endswith(".md")}


def test_a_nul_in_a_note_never_reaches_a_markdown_file(
    runner: FlaskCliRunner, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    alice_json["notes"][0]["body"] = "\x00front\x00\n"
    alice_json["notes"][0]["title"] = "Shop\x00ping"
    assert runner.invoke(args=["import-account", str(_write(tmp_path, alice_json))]).exit_code == 0
    files = _markdown_files(_export(runner, "alice@example.com"))
    assert files and not [name for name, data in files.items() if b"\x00" in data]
    assert any("\ufffdfront\ufffd\n".encode() in data for data in files.values())


def archive_with_raw_nul(db: Database, tmp_path: Path) -> Path:
    """An archive as Lifeboat wrote it before the NUL rule: a raw NUL in a Markdown body.

    Built without the CLI (the store held the NUL, the writer copied it) so the
    PostgreSQL test can reuse it.
    """
    document = json.loads(Path("tests/data/alice.json").read_text("utf-8"))
    with db.session(write=True) as session:
        user = replace_account(session, account_from_dict(document))
        session.flush()
        session.execute(
            update(NoteRow).where(NoteRow.user_id == user.id, NoteRow.position == 0).values(body="old\x00body\n")
        )
    with db.session() as session:
        stored = find_user(session, "alice@example.com")
        assert stored is not None
        result = export_user(session, stored, tmp_path / "archives", now=utcnow())
    archive = tmp_path / "archives" / result.archive.relpath
    assert any(b"old\x00body" in data for data in _markdown_files(archive).values())
    return archive


def test_restoring_an_archive_with_raw_nul_applies_the_same_rule(
    runner: FlaskCliRunner, db: Database, tmp_path: Path
) -> None:
    old_archive = archive_with_raw_nul(db, tmp_path)
    result = runner.invoke(args=["restore", str(old_archive), "--email", "copy@example.com"])
    assert result.exit_code == 0, result.output
    with db.session() as session:
        user = find_user(session, "copy@example.com")
        assert user is not None
        notes = AccountReader(session, user).account().notes
    assert notes[0].body == "old\ufffdbody\n"


@pytest.mark.parametrize("to", ["not an address", "a@b", "alice@example.com\nBcc: eve@example.com", "x@host.test"])
def test_an_email_destination_refuses_a_recipient_that_is_not_an_address(
    app: Flask, db: Database, runner: FlaskCliRunner, to: str
) -> None:
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    with db.session(write=True) as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        with pytest.raises(InvalidInput) as info:
            add_destination(session, Registry(dict(app.config)), user, "email", "mine", {"to": to})
    assert [where for where, _ in info.value.problems] == ["to"]
    assert "is not an email address" in info.value.problems[0][1]
    result = runner.invoke(args=["destination", "add-email", "alice@example.com", "--to", to])
    assert result.exit_code == 1
    assert "to: " in result.output and "is not an email address" in result.output
    assert "Traceback" not in result.output
    listed = runner.invoke(args=["destination", "list", "alice@example.com", "--json"])
    assert json.loads(listed.output) == []


def test_an_email_destination_keeps_a_valid_recipient_canonical(
    app: Flask, db: Database, runner: FlaskCliRunner
) -> None:
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    with db.session(write=True) as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        row = add_destination(
            session, Registry(dict(app.config)), user, "email", "mine", {"to": " Me+Backup@Example.org"}
        )
        assert row.settings["to"] == "me+backup@example.org"


@pytest.mark.slow  # 64 MiB of data, twice, through the JSON reader: in `make test`, not test-fast
def test_an_attachment_or_note_text_larger_than_an_archive_file_may_be_is_refused_at_import(
    runner: FlaskCliRunner, db: Database, alice_json: dict[str, Any], tmp_path: Path
) -> None:
    """What import takes, restore and the drill can read back: one limit for both (a user trial made
    an archive of a 65 MiB attachment that verified, delivered, and that restore then refused)."""
    assert MAX_WHOLE_MEMBER == MAX_FILE_BYTES
    note = alice_json["notes"][0]
    note["attachments"] = [
        {"filename": "zeros.bin", "media_type": "application/octet-stream",
         "data_base64": base64.b64encode(bytes(MAX_FILE_BYTES + 1)).decode()},
    ]  # fmt: skip
    note["body"] = "x" * (MAX_NOTE_TEXT_BYTES + 1)
    result = runner.invoke(args=["import-account", str(_write(tmp_path, alice_json))])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        "$.notes[0].attachments[0].data_base64: is 67,108,865 bytes; an attachment may be at most "
        "67,108,864 bytes (64 MiB)" in result.output
    )
    assert "$.notes[0].body: is 66,060,289 bytes of text; a note may hold at most 66,060,288 bytes (63 MiB)" in (
        result.output
    )
    with db.session() as session:
        assert find_user(session, alice_json["email"]) is None
