"""`lifeboat check-versions`: rows edited by hand (their stored content version left behind) are found and mended.

Why it matters: repeat exports reuse the bytes cached under a row's version and
the fidelity drill trusts it; a user trial edited a contact in SQL and the next
archive held the old card under the new file name, with "0 differences".
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import text

from jobs import get_context
from store import Database
from store.accounts import find_user


def _card(archive: Path) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        (name,) = [n for n in zf.namelist() if n.startswith("contacts/cards/") and "Changed" in n]
        return zf.read(name)


def _export(runner: FlaskCliRunner) -> Path:
    result = runner.invoke(args=["export", "alice@example.com"])
    assert result.exit_code == 0, result.output
    return Path(result.output.splitlines()[0])


def test_a_row_edited_by_hand_is_found_mended_and_its_next_archive_holds_the_edit(
    app: Flask, runner: FlaskCliRunner, db: Database
) -> None:
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    _export(runner)  # fills the user's export cache and the drill's ledgers
    clean = runner.invoke(args=["check-versions", "alice@example.com"])
    assert clean.exit_code == 0 and "alice@example.com: 10 items, every version matches." in clean.output
    with db.session(write=True) as session:  # what an operator's hand-written SQL does: the version stays
        session.execute(text("UPDATE contacts SET formatted_name = 'Changed Name' WHERE uid = 'c-0001'"))
    stale = _card(_export(runner))
    assert b"FN:Changed Name" not in stale  # the old card under the new name: what the check is for
    found = runner.invoke(args=["check-versions"])
    assert found.exit_code == 1
    assert "alice@example.com: 1 of 10 stale (contact c-0001). Run again with --fix." in found.output
    mended = runner.invoke(args=["check-versions", "alice@example.com", "--fix"])
    assert mended.exit_code == 0 and "1 of 10 mended (contact c-0001); export cache dropped." in mended.output
    with db.session() as session:
        user = find_user(session, "alice@example.com")
        assert user is not None
        user_id = user.id
    assert not (get_context(app).export_cache_dir / str(user_id)).exists()
    assert b"FN:Changed Name" in _card(_export(runner))
    assert runner.invoke(args=["check-versions", "alice@example.com"]).exit_code == 0


def test_check_versions_names_an_unknown_user_in_one_line(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["check-versions", "nobody@example.com"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: No user 'nobody@example.com': give the email address the account signs in with."
    ]
