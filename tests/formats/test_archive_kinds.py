"""An archive of only some kinds of data: the others are absent, counted 0, named in the README.

Goes through the product's own path (`jobs.export.export_user` on the store),
then the stranger's check (`check_archive`), the verifier, and restore, which
must leave the kinds the archive does not hold as they are in the store.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest

from account.records import Account
from exporters.archive.check import check_archive
from exporters.archive.layout import Bundle, counts_of_kinds
from exporters.archive.manifest import ArchiveError
from exporters.archive.places import included_kinds
from exporters.archive.reader import archive_kinds, read_account_and_kinds, verify_archive
from jobs.export import export_user
from jobs.restore import restore_archive
from store import Database
from store.accounts import AccountReader, find_user, replace_account
from tests.conftest import NOW


def _export(db: Database, email: str, out: Path, kinds: tuple[str, ...] | None = None) -> Path:
    with db.session() as session:
        user = find_user(session, email)
        assert user is not None
        result = export_user(session, user, out, now=NOW, kinds=kinds)
    return out / result.archive.relpath


@pytest.fixture
def stored_alice(db: Database, alice: Account) -> Account:
    with db.session(write=True) as session:
        replace_account(session, alice)
    return alice


def test_an_export_of_notes_only_has_no_contacts_or_calendars_and_passes_the_check(
    db: Database, stored_alice: Account, tmp_path: Path
) -> None:
    path = _export(db, stored_alice.email, tmp_path, ("notes",))
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        readme = zf.read("README.txt").decode()
    assert not [n for n in names if n.startswith(("contacts/", "calendars/"))]
    assert [n for n in names if n.startswith("notes/")]
    manifest = verify_archive(path)
    assert manifest.meta["kinds"] == ["notes"]
    assert manifest.meta["layout"]["address_book"] is None and manifest.meta["layout"]["calendars"] == []
    counts = manifest.counts
    assert counts["contacts"] == counts["calendars"] == counts["events"] == 0
    assert counts["notes"] == len(stored_alice.notes) > 0
    report = check_archive(path)
    assert report.counts() == dict(counts)
    assert "Left out, as chosen in the archive options: contacts and calendars." in readme


def test_the_users_own_choice_is_what_the_export_includes(db: Database, stored_alice: Account, tmp_path: Path) -> None:
    with db.session(write=True) as session:
        user = find_user(session, stored_alice.email)
        assert user is not None
        user.export_kinds = "contacts,calendars"
    with zipfile.ZipFile(_export(db, stored_alice.email, tmp_path)) as zf:
        names = zf.namelist()
        assert "Left out, as chosen in the archive options: notes." in zf.read("README.txt").decode()
    assert "contacts/contacts.vcf" in names and any(n.startswith("calendars/") for n in names)
    assert not any(n.startswith("notes/") for n in names)


def test_restoring_a_notes_only_archive_keeps_the_contacts_and_calendars_in_the_store(
    db: Database, stored_alice: Account, tmp_path: Path
) -> None:
    path = _export(db, stored_alice.email, tmp_path, ("notes",))
    account, kinds = read_account_and_kinds(path)
    assert kinds == ("notes",) and account.contacts == () and account.notes == stored_alice.notes
    restore_archive(db, path, stored_alice.email)
    with db.session() as session:
        user = find_user(session, stored_alice.email)
        assert user is not None
        restored = AccountReader(session, user).account()
    assert restored.contacts == stored_alice.contacts
    assert restored.calendars == stored_alice.calendars
    assert restored.notes == stored_alice.notes


def test_restoring_another_accounts_notes_only_archive_keeps_this_accounts_name_and_time_zone(
    db: Database, stored_alice: Account, tmp_path: Path
) -> None:
    bob = dataclasses.replace(stored_alice, email="bob@example.com", display_name="Bob", timezone="Asia/Kathmandu")
    assert (bob.display_name, bob.timezone) != (stored_alice.display_name, stored_alice.timezone)
    with db.session(write=True) as session:
        replace_account(session, bob)
    path = _export(db, bob.email, tmp_path, ("notes",))
    restore_archive(db, path, stored_alice.email)
    restore_archive(db, path, "carol@example.com")  # a new account takes what the archive says
    with db.session() as session:
        alice, carol = (find_user(session, email) for email in (stored_alice.email, "carol@example.com"))
        assert alice is not None and carol is not None
        assert (alice.display_name, alice.timezone) == (stored_alice.display_name, stored_alice.timezone)
        assert (carol.display_name, carol.timezone) == ("Bob", "Asia/Kathmandu")
        assert AccountReader(session, alice).account().notes == bob.notes


def test_a_full_export_lists_every_kind_and_has_no_left_out_line(
    db: Database, stored_alice: Account, tmp_path: Path
) -> None:
    path = _export(db, stored_alice.email, tmp_path)
    assert verify_archive(path).meta["kinds"] == ["contacts", "calendars", "notes"]
    with zipfile.ZipFile(path) as zf:
        assert "Left out" not in zf.read("README.txt").decode()


def test_kinds_are_checked_and_ordered_and_old_archives_hold_every_kind() -> None:
    assert included_kinds(["notes", "contacts"]) == ("contacts", "notes")
    for bad in ([], ["photos"]):
        with pytest.raises(ArchiveError, match="non-empty subset"):
            included_kinds(bad)
    with pytest.raises(ArchiveError, match="non-empty subset"):
        Bundle(object(), now=NOW, kinds=())  # type: ignore[arg-type]
    assert archive_kinds({}) == ("contacts", "calendars", "notes")
    with pytest.raises(ArchiveError, match=r"manifest\.json"):
        archive_kinds({"kinds": "notes"})
    figures = {"contacts": 3, "calendars": 2, "events": 9, "notes": 4, "attachments": 1}
    assert counts_of_kinds(figures, ["calendars"]) == {
        "contacts": 0,
        "calendars": 2,
        "events": 9,
        "notes": 0,
        "attachments": 0,
    }
