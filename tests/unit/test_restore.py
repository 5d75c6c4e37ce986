"""Restore streams an archive into the store: into an empty or an existing account, all or nothing.

Why real archives and a real database: the guarantee is about what the store
holds after a restore that fails at any point, so the tests build archives the
way the export does (tests/archives.py, from records in memory, so an archive
may hold what no store would), damage or spoil them, and read the store back.
The same checks run on PostgreSQL in tests/scale/test_restore_on_postgresql.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from account import storable
from account.records import Account, Attachment, Calendar, CalendarInfo, Event, Note
from account.sample import SampleSize, generate_account
from errors import InvalidInput
from exporters.archive.check import check_archive
from exporters.archive.manifest import ArchiveError
from exporters.archive.reader import iter_members, open_records, verify_archive
from exporters.archive.writer import Entry
from jobs import restore, restore_worker
from jobs.restore import restore_archive
from store import Database
from store.accounts import AccountReader, find_user, replace_account
from store.contacts import ContactRow
from tests.archives import archive_of, write_archive
from tests.conftest import NOW

OTHER = "bystander@example.com"

# One process, and two (a second one parses the calendars): the second starts a process
# that builds the app, so it runs in the whole suite and not in `make test-fast`.
BOTH_WAYS = [1, pytest.param(2, marks=pytest.mark.slow)]


def stored(database: Database, email: str) -> Account | None:
    with database.session() as session:
        user = find_user(session, email)
        return None if user is None else AccountReader(session, user).account()


def records_of(account: Account | None) -> tuple[Any, ...] | None:
    if account is None:
        return None
    return account.contacts, account.calendars, account.notes, account.display_name, account.timezone


def store_account(database: Database, account: Account) -> None:
    with database.session(write=True) as session:
        replace_account(session, account)


def _generated(email: str, seed: int) -> Account:
    return generate_account(email, SampleSize(contacts=30, events=40, notes=12), seed=seed)


# The checks, each on a given database (SQLite here, PostgreSQL in tests/scale).


def check_restore_into_an_empty_account(database: Database, alice: Account, tmp_path: Path) -> None:
    store_account(database, _generated(OTHER, 1))
    before_other = stored(database, OTHER)
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    restored = restore_archive(database, archive, "copy@example.com")
    assert records_of(stored(database, "copy@example.com")) == records_of(alice)
    counts = restored.counts
    assert (counts.contacts, counts.calendars, counts.events, counts.notes, counts.attachments) == (3, 2, 4, 3, 1)
    assert stored(database, OTHER) == before_other  # nobody else's data is touched


def check_restore_replaces_an_existing_account(database: Database, alice: Account, tmp_path: Path) -> None:
    store_account(database, _generated(alice.email, 2))  # more contacts, events and notes than alice has
    store_account(database, _generated(OTHER, 3))
    before_other = stored(database, OTHER)
    restore_archive(database, archive_of(alice, tmp_path, "alice.zip", NOW), alice.email)
    assert records_of(stored(database, alice.email)) == records_of(alice)
    assert stored(database, OTHER) == before_other
    with database.session() as session:  # the old rows are gone, not just hidden
        assert session.scalar(select(func.count()).select_from(ContactRow)) == len(alice.contacts) + 30


def check_a_failure_half_way_through_the_writes_changes_nothing(
    database: Database, alice: Account, tmp_path: Path
) -> None:
    """Two notes share an id: found by the database when contacts and calendars are already written."""
    before = _generated(alice.email, 4)
    store_account(database, before)
    spoiled = replace(alice, notes=(*alice.notes, replace(alice.notes[0], title="Same id, another note")))
    archive = archive_of(spoiled, tmp_path, "spoiled.zip", NOW)
    with pytest.raises(InvalidInput, match=r"two notes have the same id \('n-0001'\)"):
        restore_archive(database, archive, alice.email)
    assert records_of(stored(database, alice.email)) == records_of(before)


def check_a_value_too_long_late_in_the_archive_changes_nothing(
    database: Database, alice: Account, tmp_path: Path
) -> None:
    """The last item of the archive breaks a store rule: refused with its path before the store is touched."""
    before = _generated(alice.email, 5)
    store_account(database, before)
    too_long = Attachment("late.bin", "application/" + "x" * 300, b"data")
    last = replace(alice.notes[-1], attachments=(*alice.notes[-1].attachments, too_long))
    spoiled = replace(alice, notes=(*alice.notes[:-1], last))
    archive = archive_of(spoiled, tmp_path, "spoiled.zip", NOW)
    with watch_writes(database) as writes, pytest.raises(InvalidInput) as refused:
        restore_archive(database, archive, alice.email)
    assert refused.value.problems == [
        ("$.notes[2].attachments[1].media_type", "is 312 characters long; at most 255 can be stored")
    ]
    assert writes == []  # no write transaction was even begun
    assert records_of(stored(database, alice.email)) == records_of(before)


@contextmanager
def watch_writes(database: Database) -> Iterator[list[bool]]:
    """Record each write transaction `database` begins while the block runs."""
    writes: list[bool] = []
    original = database.session

    @contextmanager
    def session(*, write: bool = False) -> Iterator[Any]:
        if write:
            writes.append(write)
        with original(write=write) as opened:
            yield opened

    database.session = session  # type: ignore[method-assign]
    try:
        yield writes
    finally:
        database.session = original  # type: ignore[method-assign]


# --- on SQLite ---------------------------------------------------------------------------------


def test_a_restore_into_an_empty_account_gives_back_every_record(db: Database, alice: Account, tmp_path: Path) -> None:
    check_restore_into_an_empty_account(db, alice, tmp_path)


def test_a_restore_into_an_existing_account_replaces_all_of_its_data(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    check_restore_replaces_an_existing_account(db, alice, tmp_path)


def test_a_failure_half_way_through_the_writes_leaves_the_account_as_it_was(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    check_a_failure_half_way_through_the_writes_changes_nothing(db, alice, tmp_path)


def test_a_value_too_long_late_in_the_archive_is_refused_before_the_store_is_touched(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    check_a_value_too_long_late_in_the_archive_changes_nothing(db, alice, tmp_path)


def test_a_restore_told_not_to_replace_leaves_an_account_holding_data_as_it_was(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    """The check is made in the write transaction itself: data arriving while the archive is read is kept too."""
    before = _generated(alice.email, 6)
    store_account(db, before)
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    with pytest.raises(restore.HoldsData) as refused:
        restore_archive(db, archive, alice.email, replace=False)
    assert refused.value.counts.contacts == 30 and refused.value.email == alice.email
    assert records_of(stored(db, alice.email)) == records_of(before)
    fresh = restore_archive(db, archive, "new@example.com", replace=False)
    assert fresh.email == "new@example.com"  # nobody's data to keep: restored


def test_a_damaged_archive_is_refused_before_anything_changes(db: Database, alice: Account, tmp_path: Path) -> None:
    before = _generated(alice.email, 6)
    store_account(db, before)
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(damaged, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".ics"):
                data = data.replace(b"VERSION:2.0", b"VERSION:2.1", 1)  # same size, another SHA-256
            out.writestr(info, data)
    with watch_writes(db) as writes, pytest.raises(InvalidInput, match=r"calendars/.*SHA-256 does not match"):
        restore_archive(db, damaged, alice.email)
    assert writes == []
    assert records_of(stored(db, alice.email)) == records_of(before)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda line: [] if line.startswith(b"DTSTART") else [line], "has no start (DTSTART)"),
        (lambda line: [line, line] if line.startswith(b"DTSTART") else [line], "has DTSTART more than once"),
        (
            lambda line: [b"DTSTART:PT1H"] if line.startswith(b"DTSTART") else [line],
            "DTSTART 'PT1H' is not a date or a date-time: write it as YYYYMMDD",
        ),
        (
            lambda line: [b"DTSTART:20261301T000000"] if line.startswith(b"DTSTART") else [line],
            "DTSTART '20261301T000000' is not a date or a date-time: "
            "write it as YYYYMMDD (all day) or YYYYMMDDTHHMMSS (Z at the end for UTC)",
        ),
        (
            lambda line: [line, b"X-LIFEBOAT-DTEND:1"] if line.startswith(b"DTSTART") else [line],
            "X-LIFEBOAT-DTEND '1' is not a date or a date-time",
        ),
        (
            lambda line: [line, b"RDATE;VALUE=PERIOD:x"] if line.startswith(b"DTSTART") else [line],
            "RDATE 'x' is not a list of dates or date-times: write it as YYYYMMDD",
        ),
    ],
)
@pytest.mark.parametrize("processes", BOTH_WAYS)
def test_an_archive_that_does_not_parse_late_is_refused_before_anything_changes(
    db: Database, alice: Account, tmp_path: Path, edit: Any, problem: str, processes: int
) -> None:
    """The last calendar's one event was edited by hand (no start, two, a duration...): found while reading,
    after everything before it, as one problem of that event, never a crash.
    """
    before = _generated(alice.email, 9)
    store_account(db, before)
    late = Event(uid="edited", start=alice.calendars[-1].events[0].start)
    spoiled = replace(alice, calendars=(*alice.calendars, Calendar(CalendarInfo("Late"), (late,))))
    archive = archive_of(spoiled, tmp_path, "spoiled.zip", NOW)
    _edit_late_calendar(archive, tmp_path, lambda lines: [out for line in lines for out in edit(line)])
    with (
        watch_writes(db) as writes,
        pytest.raises(InvalidInput, match=r"^calendars/Late.ics: The calendar file has 1 problem") as refused,
    ):
        restore_archive(db, tmp_path / "rewritten.zip", alice.email, processes=processes)
    ((where, message),) = refused.value.problems
    assert where == "event 'edited'" and message.startswith(problem) and "\n" not in message
    assert "broken property" not in message  # icalendar's own wording stays inside
    assert writes == []
    assert records_of(stored(db, alice.email)) == records_of(before)


def _edit_late_calendar(archive: Path, tmp_path: Path, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    """The archive again with calendars/Late.ics's lines edited, its manifest and sums made to match."""
    entries = []
    for path, data in iter_members(archive):
        if path in ("README.txt", "SHA256SUMS"):
            continue  # the writer makes them again
        if path == "calendars/Late.ics":  # its one event
            data = b"\r\n".join(edit(data.split(b"\r\n")))
        entries.append(Entry(path, [data]))
    meta = dict(verify_archive(archive).meta)
    layout = meta.pop("layout")
    write_archive(tmp_path, "rewritten.zip", entries, meta, NOW, layout=lambda: layout)


def test_replace_account_refuses_a_late_bad_value_with_every_problem_and_changes_nothing(
    db: Database, alice: Account
) -> None:
    """Without staging (import-account, the demo) rows are written before the bad value: the rollback undoes them."""
    before = _generated(alice.email, 8)
    store_account(db, before)
    first = replace(alice.notes[0], attachments=(Attachment("a", "x" * 256, b""),))
    last = replace(alice.notes[-1], id="i" * 1001)
    spoiled = replace(alice, notes=(first, *alice.notes[1:-1], last))
    with pytest.raises(InvalidInput) as refused, db.session(write=True) as session:
        replace_account(session, spoiled)
    assert refused.value.problems == storable.limit_problems(spoiled)  # every problem, as for a whole account
    assert [path for path, _ in refused.value.problems] == ["$.notes[0].attachments[0].media_type", "$.notes[2].id"]
    assert records_of(stored(db, alice.email)) == records_of(before)


def test_restore_reads_notes_with_attachments_and_left_out_kinds_as_export_wrote_them(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    note = Note(
        id="big",
        title="Big",
        body="x\n",
        attachments=(Attachment("b.bin", "application/octet-stream", bytes(range(256)) * 4096),),
    )
    account = replace(alice, notes=(*alice.notes, note))
    restore_archive(db, archive_of(account, tmp_path, "a.zip", NOW), "copy@example.com")
    copy = stored(db, "copy@example.com")
    assert copy is not None and copy.notes == account.notes


def test_a_restore_in_two_processes_stores_what_one_process_stores(db: Database, tmp_path: Path) -> None:
    """The calendars staged by `jobs.restore_worker` land where one process puts them, with the same counts."""
    account = generate_account("two@example.com", SampleSize(contacts=40, events=120, notes=15), seed=11)
    archive = archive_of(account, tmp_path, "two.zip", NOW)
    one = restore_archive(db, archive, "one@example.com", processes=1)
    two = restore_archive(db, archive, "two@example.com", processes=2)
    assert (two.kinds, two.counts) == (one.kinds, one.counts)
    assert records_of(stored(db, "two@example.com")) == records_of(stored(db, "one@example.com"))


@pytest.mark.parametrize("how", ["kill", "raise", "mute"])
def test_a_restore_whose_second_process_dies_is_done_in_one(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(restore, "WORKER", "tests.formats.dying_check_worker")
    monkeypatch.setenv("DYING_CHECK_WORKER", how)
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    restored = restore_archive(db, archive, "copy@example.com", processes=2)
    assert records_of(stored(db, "copy@example.com")) == records_of(alice)
    assert restored.counts.events == 4


def _records(archive: Path, **options: Any) -> tuple[Any, ...]:
    with open_records(archive, **options) as records:
        calendars = [(info, list(events)) for info, events in records.calendars()]
        return list(records.contacts()), calendars, list(records.notes())


def test_an_archive_opened_with_the_digest_verified_elsewhere_reads_the_records_a_full_verify_reads(
    alice: Account, tmp_path: Path
) -> None:
    """What `jobs.restore_worker` does instead of verifying again: the same records come out."""
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert _records(archive, verified_sha256=digest) == _records(archive)


def test_an_archive_that_is_not_the_file_whose_digest_was_verified_is_refused(alice: Account, tmp_path: Path) -> None:
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    archive.write_bytes(archive.read_bytes() + b"\0")  # a zip still, read as before; another file all the same
    with (
        pytest.raises(ArchiveError, match="changed since it was verified"),
        open_records(archive, verified_sha256=digest),
    ):
        pass


@pytest.mark.parametrize("processes", BOTH_WAYS)
def test_a_calendar_that_is_not_utf8_is_refused_not_stored_with_replacement_characters(
    db: Database, alice: Account, tmp_path: Path, processes: int
) -> None:
    before = _generated(alice.email, 9)
    store_account(db, before)
    late = Event(uid="edited", summary="Review", start=alice.calendars[-1].events[0].start)
    spoiled = replace(alice, calendars=(*alice.calendars, Calendar(CalendarInfo("Late"), (late,))))
    archive = archive_of(spoiled, tmp_path, "spoiled.zip", NOW)
    _edit_late_calendar(
        archive,
        tmp_path,
        lambda lines: [b"SUMMARY:Review \xff\xfe" if line.startswith(b"SUMMARY") else line for line in lines],
    )
    with (
        watch_writes(db) as writes,
        pytest.raises(
            InvalidInput, match=r"^calendars/Late.ics: .*not UTF-8 \(bad byte at offset \d+\): re-save it as UTF-8"
        ),
    ):
        restore_archive(db, tmp_path / "rewritten.zip", alice.email, processes=processes)
    assert writes == []
    assert records_of(stored(db, alice.email)) == records_of(before)


def test_a_restore_worker_whose_first_process_is_gone_removes_its_spool_and_answers_nothing(
    alice: Account, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed `restore` cannot remove the worker's spool in the system's temporary folder: the worker does."""
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    spool = tmp_path / ".lifeboat-restore-calendars-test"
    spool.touch()
    gone = str(os.getpid() + 4_000_000)  # not this process, the worker's parent when it is called here
    assert restore_worker.main([str(archive), str(tmp_path), str(spool), alice.email, digest, gone]) == 1
    assert not spool.exists() and capsys.readouterr().out == ""
    spool.touch()
    assert restore_worker.main([str(archive), str(tmp_path), str(spool), alice.email, digest, str(os.getppid())]) == 0
    assert spool.stat().st_size > 0 and '"staged"' in capsys.readouterr().out


def _with_added_file(archive: Path, tmp_path: Path, added: str) -> Path:
    """The archive again with one more file, listed in manifest.json and SHA256SUMS, that nothing refers to."""
    entries = [Entry(path, [data]) for path, data in iter_members(archive) if path not in ("README.txt", "SHA256SUMS")]
    entries.append(Entry(added, [b"\x00\x01added later"]))
    meta = dict(verify_archive(archive).meta)
    layout = meta.pop("layout")
    write_archive(tmp_path, "added.zip", entries, meta, NOW, layout=lambda: layout)
    return tmp_path / "added.zip"


ADDED = [
    (
        "notes/attachments/x.bin",
        "an attachment no note links (manifest.json counts say 1 attachments, the files hold 2)",
    ),
    ("notes/Home/Shopping list.assets/y.png", "an attachment no note links"),  # where an attachment would be
    ("calendars/Extra.ics", "a calendar manifest.json's layout does not list (manifest.json counts say 2 calendars"),
    ("stuff/other.txt", "not a file of a Lifeboat archive (contacts/, calendars/, notes/)"),
    ("contacts/photo.jpg", "not a file of a Lifeboat archive"),
]


@pytest.mark.parametrize(("added", "said"), ADDED)
@pytest.mark.parametrize("processes", BOTH_WAYS)
def test_a_file_added_to_the_archive_that_restore_would_leave_unread_is_refused_before_anything_changes(
    db: Database, alice: Account, tmp_path: Path, added: str, said: str, processes: int
) -> None:
    """As `verify` refuses it (the same rule, exporters/archive/file_kinds.py): one line naming the file and the fix."""
    before = _generated(alice.email, 9)
    store_account(db, before)
    archive = _with_added_file(archive_of(alice, tmp_path, "alice.zip", NOW), tmp_path, added)
    with watch_writes(db) as writes, pytest.raises(InvalidInput) as refused:
        restore_archive(db, archive, alice.email, processes=processes)
    message = str(refused.value)
    assert message.startswith(f"{added}: {said}") and "\n" not in message
    assert message.endswith("it was added after the export: use a copy of the archive as Lifeboat wrote it")
    assert writes == []
    assert records_of(stored(db, alice.email)) == records_of(before)
    with pytest.raises(InvalidInput):  # verify refuses the same archive
        check_archive(archive, processes=processes)


def test_the_restore_worker_refuses_a_file_added_to_the_archive_too(
    alice: Account, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second process of a large restore answers 'invalid' for it rather than staging the calendars."""
    archive = _with_added_file(archive_of(alice, tmp_path, "alice.zip", NOW), tmp_path, "notes/attachments/x.bin")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    spool = tmp_path / ".lifeboat-restore-calendars-test"
    argv = [str(archive), str(tmp_path), str(spool), alice.email, digest, str(os.getppid())]
    assert restore_worker.main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["invalid"].startswith("notes/attachments/x.bin: an attachment no note links")


def test_a_note_or_attachment_too_big_to_hold_is_refused_before_the_store_is_touched(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consistent archive (manifest and SHA256SUMS rewritten to match) with a huge note must not be read whole."""
    before = _generated(alice.email, 5)
    store_account(db, before)
    archive = archive_of(alice, tmp_path, "alice.zip", NOW)
    largest = max(len(note.body.encode()) for note in alice.notes)
    monkeypatch.setattr("exporters.archive.reader.MAX_WHOLE_MEMBER", largest // 2)  # stands for 64 MiB
    with watch_writes(db) as writes, pytest.raises(InvalidInput) as refused:
        restore_archive(db, archive, alice.email)
    assert "MiB a note or attachment may be" in str(refused.value) and str(refused.value).count("\n") == 0
    assert writes == []
    assert records_of(stored(db, alice.email)) == records_of(before)
