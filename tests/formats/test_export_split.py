"""A big export makes its calendars in a second process, and the archive is the same bytes (issue 15).

`jobs.export_split` copies members another process compressed into the zip
without compressing them again, so each check here exports the same data in one
process and in two and compares the files byte for byte, with and without the
per-user item cache. tests/scale/test_export_split_postgresql.py runs the same
check on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from account.records import Account
from account.sample import SampleSize, generate_account
from exporters.archive.helper import Helper
from exporters.archive.packed import pack_entries, raw_entries
from exporters.archive.writer import Entry, write_archive
from jobs import export_split
from jobs.export import ExportResult, export_user
from jobs.export_cache import FILENAME
from store import Database
from store.accounts import Counts, find_user, replace_account
from tests.helper_modules import loaded_of, run_helper

# Each test exports in two processes.
pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


def _export(db: Database, email: str, out: Path, *, processes: int, cache: Path | None, name: str) -> ExportResult:
    with db.session() as session:
        user = find_user(session, email)
        assert user is not None
        return export_user(session, user, out, now=NOW, processes=processes, cache_dir=cache, archive_id=name)


def _import_and_export(db: Database, account: Account, out: Path, **options: Any) -> ExportResult:
    with db.session(write=True) as session:
        replace_account(session, account)
    with db.session() as session:
        user = find_user(session, account.email)
        assert user is not None
        return export_user(session, user, out, now=NOW, **options)


def check_two_processes_give_the_same_archive(db: Database, account: Account, tmp_path: Path) -> None:
    """One process and two, without the cache, filling it and reusing it: every archive the same bytes."""
    with db.session(write=True) as session:
        replace_account(session, account)
    out, cache = tmp_path / "archives", tmp_path / "cache"
    events = sum(len(c.events) for c in account.calendars)
    plain = _export(db, account.email, out, processes=1, cache=None, name="one")
    expected = (out / plain.archive.relpath).read_bytes()
    split = _export(db, account.email, out, processes=2, cache=None, name="two")
    assert (out / split.archive.relpath).read_bytes() == expected
    assert split.info.manifest == plain.info.manifest
    filled = _export(db, account.email, out, processes=2, cache=cache, name="two-filling")
    assert (out / filled.archive.relpath).read_bytes() == expected
    assert filled.reuse.misses["events"] == events and (cache / str(filled.archive.user_id) / FILENAME).is_file()
    reused = _export(db, account.email, out, processes=2, cache=cache, name="two-reusing")
    assert (out / reused.archive.relpath).read_bytes() == expected
    assert reused.reuse.hits == {"contacts": len(account.contacts), "events": events, "notes": len(account.notes)}
    again = _export(db, account.email, out, processes=1, cache=cache, name="one-reusing")
    assert (out / again.archive.relpath).read_bytes() == expected
    assert again.reuse.hits["events"] == events  # the second process kept what it used for the next run
    assert not [p for p in out.iterdir() if p.name.startswith(".lifeboat-split-")]


def test_alice_exported_in_two_processes_is_the_same_archive(db: Database, alice: Account, tmp_path: Path) -> None:
    check_two_processes_give_the_same_archive(db, alice, tmp_path)


def test_a_generated_account_exported_in_two_processes_is_the_same_archive(db: Database, tmp_path: Path) -> None:
    size = SampleSize(contacts=80, events=600, notes=60, attachment_ratio=0.1, calendars=3)
    check_two_processes_give_the_same_archive(db, generate_account("big@example.com", size, seed=7), tmp_path)


def test_a_packed_member_is_copied_into_the_zip_as_the_writer_would_compress_it(tmp_path: Path) -> None:
    entries = [
        Entry("a.txt", [b"hello " * 5000, b"", b"world " * 20000]),
        Entry("b.bin", [os.urandom(300_000)]),
        Entry("empty.txt", []),
    ]
    direct = io.BytesIO()
    write_archive(direct, entries, {"user": "x@example.com"}, NOW)
    with (tmp_path / "packed").open("w+b") as packed:
        members = list(pack_entries(entries, packed))
        copied = io.BytesIO()
        write_archive(copied, raw_entries(members, packed), {"user": "x@example.com"}, NOW)
    assert copied.getvalue() == direct.getvalue()


def test_zipfile_still_counts_crc_and_size_where_the_raw_copy_sets_them() -> None:
    with zipfile.ZipFile(io.BytesIO(), "w", zipfile.ZIP_DEFLATED) as zf, zf.open("a.txt", "w") as member:
        member.write(b"abc")
        # exporters/archive/writer.py `_write_raw` sets both before close() writes the header.
        assert (getattr(member, "_crc", None), getattr(member, "_file_size", None)) == (zlib.crc32(b"abc"), 3)


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a second process was started")


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("kill", "the second process was killed by SIGKILL (out of memory?)"),
        ("raise", "the second process failed (exit status 1): RuntimeError"),
        ("mute", "the second process ended without an answer"),
    ],
)
def test_a_second_process_that_dies_fails_the_export_in_one_line_and_leaves_no_archive(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, said: str
) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    out = tmp_path / "archives"
    monkeypatch.setattr(export_split, "WORKER", "tests.formats.dying_check_worker")
    monkeypatch.setenv("DYING_CHECK_WORKER", how)
    with pytest.raises(export_split.CalendarsFailed) as caught:
        _export(db, alice.email, out, processes=2, cache=tmp_path / "cache", name="dies")
    assert str(caught.value).startswith(f"the calendars could not be exported: {said}")
    assert str(caught.value).endswith("; run the export again") and "\n" not in str(caught.value)
    assert [p for p in out.rglob("*") if p.is_file()] == []  # no archive, no partial zip, no packed file


def test_a_small_export_starts_no_second_process(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_split, "Helper", _refuse)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert _import_and_export(db, alice, tmp_path).counts.events > 0


def test_two_processes_only_for_many_events_beside_many_other_items_on_two_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events, others = export_split.EVENTS_FROM, export_split.OTHERS_FROM

    def counts(events: int, contacts: int, notes: int) -> Counts:
        return Counts(contacts=contacts, calendars=1, events=events, notes=notes, attachments=0)

    every = ("contacts", "calendars", "notes")
    url = "sqlite:///x.db"
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert export_split.processes_for(counts(events, others - 10, 10), every, url) == 2
    assert export_split.processes_for(counts(events - 1, others, 0), every, url) == 1
    assert export_split.processes_for(counts(events, others - 11, 10), every, url) == 1  # too little beside them
    assert export_split.processes_for(counts(events, others, 0), ("calendars", "notes"), url) == 1
    assert export_split.processes_for(counts(events, others, 0), ("contacts", "notes"), url) == 1
    assert export_split.processes_for(counts(events, others, 0), every, None) == 1  # in memory: no second connection
    assert export_split.processes_for(counts(events, others, 0), every, url, warm_cache=True) == 1  # a repeat
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert export_split.processes_for(counts(events, others, 0), every, url) == 1


def test_an_account_that_changed_between_the_two_reads_fails_the_export() -> None:
    counts = Counts(contacts=1, calendars=2, events=10, notes=0, attachments=0)
    with pytest.raises(export_split.ExportChanged, match="run the export again"):
        export_split.same_account(9, 2, counts)
    export_split.same_account(10, 2, counts)


def test_a_split_export_reports_progress_that_never_goes_back(db: Database, alice: Account, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    _import_and_export(db, alice, tmp_path, processes=2, progress=lambda s, p: seen.append((s, p)))
    percents = [p for _, p in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    events = sum(len(c.events) for c in alice.calendars)
    assert f"calendars:{events}/{events}" in [s for s, _ in seen]


def test_an_export_without_calendars_starts_no_second_process(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_split, "Helper", _refuse)
    result = _import_and_export(db, alice, tmp_path, processes=2, kinds=("contacts", "notes"))
    assert result.counts.events == 0


def test_a_repeat_export_with_a_warm_item_cache_stays_in_one_process(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    class Counted(Helper):
        def __init__(self, module: str, args: Sequence[str]) -> None:
            started.append(module)
            super().__init__(module, args)

    monkeypatch.setattr(export_split, "EVENTS_FROM", 1)
    monkeypatch.setattr(export_split, "OTHERS_FROM", 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(export_split, "Helper", Counted)
    first = _import_and_export(db, alice, tmp_path / "archives", cache_dir=tmp_path / "cache")
    assert started == [export_split.WORKER] and sum(first.reuse.hits.values()) == 0
    repeat = _import_and_export(db, alice, tmp_path / "archives", cache_dir=tmp_path / "cache")
    assert started == [export_split.WORKER] and sum(repeat.reuse.misses.values()) == 0


# Libraries the calendar process has no use for: the web app's and the operator bucket's (through
# `jobs/__init__` or `store.archive_bucket`), the vCard writer's, and those of address checks and signing.
NOT_FOR_CALENDARS = ("flask", "werkzeug", "boto3", "botocore", "vobject", "pytz", "email_validator", "cryptography")


def test_the_calendar_process_makes_the_calendars_without_loading_flask_boto3_or_vobject(
    db: Database, alice: Account, tmp_path: Path
) -> None:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
    request, packed = tmp_path / "request.json", tmp_path / "calendars.packed"
    request.write_text(
        json.dumps(
            {
                "database": db.url,
                "user": user.id,
                "now": NOW.isoformat(),
                "timezone": "UTC",
                "cache": os.fspath(tmp_path / "cache"),
                "scratch": os.fspath(tmp_path),
                "out": os.fspath(packed),
            }
        ),
        encoding="utf-8",
    )
    answer, modules = run_helper(export_split.WORKER, [os.fspath(request)], tmp_path)
    assert len(answer["members"]) == len(alice.calendars) and packed.stat().st_size > 0
    assert answer["events"] == sum(len(c.events) for c in alice.calendars)
    assert loaded_of(modules, ["sqlalchemy", "jobs.export_cache"]) == ["jobs.export_cache", "sqlalchemy"]
    assert loaded_of(modules, NOT_FOR_CALENDARS) == []
