"""README.txt lists only what the archive holds, and says so of an empty address book (user trial 7, item 7)."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from account.records import Account
from exporters.archive.manifest import Manifest
from exporters.archive.readme import readme_text
from store import Database, User
from store.accounts import replace_account
from tests.formats.test_archive_kinds import _export


def _readme(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read("README.txt").decode()


def _inside(readme: str) -> str:
    return readme.split("What is inside\n", 1)[1].split("\n\n", 1)[0]


def test_a_contacts_only_archive_lists_only_contacts(db: Database, alice: Account, tmp_path: Path) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    readme = _readme(_export(db, alice.email, tmp_path, ("contacts",)))
    assert "This ZIP is your own copy of your contacts, in open formats" in readme
    assert "Left out, as chosen in the archive options: calendars and notes." in readme
    inside = _inside(readme)
    assert "contacts/contacts.vcf" in inside and "this is the one to import" in inside
    assert "calendars/" not in inside and "notes/" not in inside
    assert "Calendars (calendars/*.ics)" not in readme and "Notes (notes/)" not in readme
    assert "Contacts (contacts/contacts.vcf)" in readme


def test_an_empty_account_s_readme_does_not_offer_an_empty_file_to_import(db: Database, tmp_path: Path) -> None:
    with db.session(write=True) as session:
        session.add(User(email="zoe@example.org", display_name="Zoe", timezone="UTC"))
    readme = _readme(_export(db, "zoe@example.org", tmp_path))
    inside = _inside(readme)
    assert "the one to import" not in readme
    assert "Empty: the account had no contacts when this archive\n                          was made" in inside
    assert "No calendars: the account had none" in inside and "No notes: the account had none" in inside
    assert "Google Contacts:" not in readme  # no import steps for nothing


def test_an_archive_of_everything_reads_as_before() -> None:
    manifest = Manifest(
        created_at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
        files=[],
        meta={"user": "a@example.org", "counts": {"contacts": 2, "calendars": 1, "events": 3, "notes": 1}},
    )
    readme = readme_text("4.0", manifest=manifest)
    assert "your own copy of your contacts, calendars and notes, in open\nformats" in readme
    inside = _inside(readme)
    for entry in ("contacts/contacts.vcf", "contacts/cards/", "calendars/", "notes/", "manifest.json", "SHA256SUMS"):
        assert entry in inside
    for section in ("Contacts (contacts/contacts.vcf)", "Calendars (calendars/*.ics)", "Notes (notes/)"):
        assert section in readme
