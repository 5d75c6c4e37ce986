"""The service signs every archive with its own key: `lifeboat verify`, `signing-key rotate`, the well-known URL."""

from __future__ import annotations

import hashlib
import json
import logging
import stat
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner

import cli
from app import create_app
from exporters.archive.manifest import RESERVED_NAMES, SIGNATURE_NAME, parse_manifest
from exporters.archive.writer import Entry
from jobs import get_context
from tests.archives import write_archive

WELL_KNOWN = "/.well-known/lifeboat-signing-keys.json"


def _export(runner: FlaskCliRunner, tmp_path: Path) -> Path:
    assert runner.invoke(args=["import-account", "tests/data/alice.json"]).exit_code == 0
    result = runner.invoke(args=["export", "alice@example.com", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    return Path(result.output.splitlines()[0])


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _unsigned(path: Path, target: Path) -> Path:
    """A copy of the archive at `target` with every member but its signature (manifest.json.sig)."""
    members = _members(path)
    del members[SIGNATURE_NAME]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _rewritten(path: Path, tmp_path: Path, name: str, old: bytes, new: bytes) -> Path:
    """The archive with `name` edited and manifest.json and SHA256SUMS made to agree (the signature kept)."""
    members = _members(path)
    meta = dict(parse_manifest(members["manifest.json"]).meta)
    members[name] = members[name].replace(old, new)
    entries = [Entry(n, [data]) for n, data in members.items() if n not in RESERVED_NAMES]
    forged = write_archive(tmp_path, "forged.zip", entries, meta, parse_manifest(members["manifest.json"]).created_at)
    assert forged.path is not None
    with zipfile.ZipFile(forged.path, "a") as archive:
        archive.writestr(SIGNATURE_NAME, members[SIGNATURE_NAME])
    return forged.path


def test_the_embedded_default_generates_a_signing_key_readable_by_its_owner_only(app: Flask) -> None:
    key_file = Path(app.instance_path) / "signing_keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("ed25519-private:")
    assert get_context(app).signing_key is not None


KEY = "kZBxZJ7Ob6nL1qKP3zGJ4m0H0qFvUEZ5K9d1m2t3x4Y="  # a Fernet key: a server on PostgreSQL needs one to start


def test_a_shared_database_without_signing_keys_says_on_start_that_archives_go_out_unsigned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL no key is made up per host (each would sign differently): the operator is told to set one."""
    settings = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"}
    with caplog.at_level(logging.WARNING, logger="lifeboat.app"):
        shared = create_app(
            {**settings, "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYS": [KEY]}
        )
    assert shared.config["SIGNING_KEYS"] is None
    assert [r.getMessage() for r in caplog.records if "not signed" in r.getMessage()] == [
        "archives are not signed: set LIFEBOAT_SIGNING_KEYS (the same on every host; "
        "`lifeboat signing-key new` prints one) so that verify can tell an edited archive"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lifeboat.app"):
        create_app({**settings, "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}"})
    assert not [r for r in caplog.records if "not signed" in r.getMessage()]  # the embedded default signs


@pytest.mark.parametrize(
    ("args", "warned"),
    [
        (["signing-key", "new"], False),  # the command that makes the key (user trial: warned before printing it)
        (["signing-key", "show"], False),
        (["db", "current"], False),  # makes no archive
        (["export", "nobody@example.com"], True),
        (["scheduler", "--once"], True),
    ],
)
def test_the_unsigned_warning_comes_only_from_commands_that_make_archives(
    fresh_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, args: list[str], warned: bool
) -> None:
    monkeypatch.setenv("LIFEBOAT_DATABASE_URL", "postgresql+psycopg://lifeboat@db.invalid/lifeboat")
    monkeypatch.setenv("LIFEBOAT_ENCRYPTION_KEYS", KEY)
    result = CliRunner().invoke(cli.main, args)
    assert ("archives are not signed" in result.output) is warned, result.output
    assert "Traceback" not in result.output


def test_an_exported_archive_is_signed_and_verify_says_so(runner: FlaskCliRunner, app: Flask, tmp_path: Path) -> None:
    path = _export(runner, tmp_path)
    key = get_context(app).signing_key
    assert key is not None
    assert json.loads(_members(path)[SIGNATURE_NAME])["key_id"] == key.public.key_id
    result = runner.invoke(args=["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{path}: OK"
    assert f"signed: manifest.json is what the service signed (key {key.public.key_id})" in result.output


def test_verify_refuses_a_consistent_rewrite_of_a_signed_archive_in_words_that_say_so(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = _export(runner, tmp_path)
    forged = _rewritten(path, tmp_path, "calendars/Personal.ics", b"Weekly sync", b"Weekly sunc")
    result = runner.invoke(args=["verify", str(forged)])
    assert result.exit_code != 0
    assert "NOT OK" in result.output
    assert "manifest.json is not what the service signed" in result.output
    assert "the archive was changed after it was made" in result.output


def test_an_unsigned_archive_still_verifies_its_checksums_and_says_it_is_unsigned(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = _export(runner, tmp_path)
    unsigned = _unsigned(path, tmp_path / "unsigned.zip")
    result = runner.invoke(args=["verify", str(unsigned)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{unsigned}: OK (unsigned)" and "unsigned: " in result.output
    strict = runner.invoke(args=["verify", "--require-signature", str(unsigned)])
    assert strict.exit_code != 0 and "NOT OK" in strict.output and "unsigned" in strict.output


def test_a_consistent_rewrite_with_its_signature_stripped_says_it_cannot_be_proven_and_is_refused_on_demand(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    """The trial: a file edited with manifest.json and SHA256SUMS rewritten, and manifest.json.sig removed.

    verify cannot tell it from an archive made unsigned (that is README's claim, corrected): it says OK on
    the checksums but, plainly, that nothing proves the archive unaltered and how to demand a signature;
    --require-signature and --expect (the receipt's SHA-256) refuse it.
    """
    path = _export(runner, tmp_path)
    receipt = hashlib.sha256(path.read_bytes()).hexdigest()
    forged = _rewritten(path, tmp_path, "calendars/Personal.ics", b"Weekly sync", b"Weekly sunc")
    stripped = _unsigned(forged, tmp_path / "stripped.zip")
    lenient = runner.invoke(args=["verify", str(stripped)])
    assert lenient.exit_code == 0, lenient.output
    assert "nothing proves it unaltered" in lenient.output and "--require-signature" in lenient.output
    strict = runner.invoke(args=["verify", "--require-signature", str(stripped)])
    assert strict.exit_code != 0 and "NOT OK" in strict.output
    expected = runner.invoke(args=["verify", "--expect", receipt, str(stripped)])
    assert expected.exit_code != 0 and "NOT OK" in expected.output


def test_verify_expect_checks_the_whole_file_against_the_receipts_sha256_first(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = _export(runner, tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    good = runner.invoke(args=["verify", "--expect", digest.upper(), str(path)])
    assert good.exit_code == 0, good.output
    assert "SHA-256 as expected" in good.output
    other = "0" * 64
    bad = runner.invoke(args=["verify", "--expect", other, str(path)])
    assert (bad.exit_code, bad.output) == (
        1,
        f"Error: {path}: NOT OK: the file's SHA-256 is {digest}, not the expected {other}: "
        "this is not the archive that was delivered, or it was changed since\n",
    )
    nonsense = runner.invoke(args=["verify", "--expect", "abc", str(path)])
    assert nonsense.exit_code != 0 and "not a SHA-256" in nonsense.output


def test_after_rotation_old_archives_verify_against_the_published_key_set(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    old = _export(runner, tmp_path)
    before = get_context(app).signing_key
    assert before is not None
    result = runner.invoke(args=["signing-key", "rotate"])
    assert result.exit_code == 0, result.output
    after = get_context(app).signing_key
    assert after is not None and after.public.key_id != before.public.key_id
    assert f"{before.public.key_id} is retired and stays published" in result.output
    key_file = Path(app.instance_path) / "signing_keys"
    assert key_file.read_text().count("ed25519-private") == 1 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The published set, saved to a file as anyone would: the old archive still verifies with it.
    published = app.test_client().get(WELL_KNOWN).get_json()
    assert [k["key_id"] for k in published["keys"]] == [after.public.key_id, before.public.key_id]
    assert published["keys"][1]["retired"] is not None
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(published))
    checked = runner.invoke(args=["verify", "--keys", str(keys), "--require-signature", str(old)])
    assert checked.exit_code == 0, checked.output
    assert f"key {before.public.key_id}" in checked.output
    shown = runner.invoke(args=["signing-key", "show"])
    assert json.loads(shown.output) == published


def test_verify_with_a_foreign_key_set_names_the_key_it_does_not_know(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    path = _export(runner, tmp_path)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"format": "lifeboat-signing-keys", "keys": []}))
    result = runner.invoke(args=["verify", "--keys", str(keys), str(path)])
    assert result.exit_code == 0, result.output  # scripts that check the exit status keep working
    # The first line is what people and scripts read: a bare "OK" there read as "signed and unaltered" (trial 9).
    assert result.output.splitlines()[0] == f"{path}: OK (signature not checked)"
    key = get_context(app).signing_key
    assert key is not None
    assert f"signed by key {key.public.key_id}, which this key set does not know" in result.output
    keys.write_text("not json")
    refused = runner.invoke(args=["verify", "--keys", str(keys), str(path)])
    assert refused.exit_code != 0 and "cannot be read as JSON" in refused.output


def test_the_well_known_url_serves_the_public_key_set_without_sign_in(app: Flask) -> None:
    response = app.test_client().get(WELL_KNOWN)
    assert response.status_code == 200
    assert "public" in response.headers["Cache-Control"]
    document = response.get_json()
    key = get_context(app).signing_key
    assert key is not None
    assert document["format"] == "lifeboat-signing-keys"
    (entry,) = document["keys"]
    assert entry["key_id"] == key.public.key_id and entry["public_key"] == key.public.base64
    assert entry["algorithm"] == "ed25519" and entry["retired"] is None
    assert "private" not in response.get_data(as_text=True)
