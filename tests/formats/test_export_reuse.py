"""A repeat export reuses what it wrote for unchanged items, and the archive stays the same bytes (issue 15).

Every export here is made twice, with the per-user item cache and without it,
and the two zip files must be identical byte for byte: the cache may only ever
save work, never change what a user gets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.records import Account, Calendar, Contact, Note
from account.sample import SampleSize, generate_account
from exporters.archive.check import check_archive
from exporters.archive.reader import verify_archive
from jobs.export import ExportResult, export_user
from jobs.export_cache import FILENAME
from store import Database
from store.accounts import find_user, replace_account
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendars, events
from tests.strategies.notes import notes

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
EMAIL = "reuse@example.com"


def _export(db: Database, out: Path, now: dt.datetime, *, cache: Path | None, **options: object) -> ExportResult:
    with db.session() as session:
        user = find_user(session, EMAIL)
        assert user is not None
        return export_user(session, user, out, now=now, cache_dir=cache, **options)  # type: ignore[arg-type]


def _both(
    db: Database, out: Path, cache: Path, now: dt.datetime, **options: object
) -> tuple[ExportResult, bytes, bytes]:
    """Export with the cache and without it; return the cached run's result and both files' bytes."""
    cached = _export(db, out, now, cache=cache, **options)
    plain = _export(db, out, now, cache=None, **options)
    assert plain.reuse.hits == {"contacts": 0, "events": 0, "notes": 0}
    return cached, (out / cached.archive.relpath).read_bytes(), (out / plain.archive.relpath).read_bytes()


def _unique(items: Sequence[Any], key: str) -> tuple[Any, ...]:
    seen: set[str] = set()
    out = []
    for item in items:
        value = getattr(item, key) if key != "name" else item.info.name
        if value not in seen:
            seen.add(value)
            out.append(item)
    return tuple(out)


def _account(cs: list[Contact], cals: list[Calendar], ns: list[Note], timezone: str) -> Account:
    return Account(
        email=EMAIL,
        display_name="Reuse",
        timezone=timezone,
        contacts=_unique(cs, "uid"),
        calendars=tuple(Calendar(c.info, _unique(list(c.events), "uid")) for c in _unique(cals, "name")),
        notes=_unique(ns, "id"),
    )


@st.composite
def _edited(draw: st.DrawFn, items: tuple[Any, ...], new: st.SearchStrategy[Any], key: str) -> list[Any]:
    """`items` with some deleted, some replaced by new content under the same key, some added."""
    out: list[Any] = []
    for item in items:
        action = draw(st.sampled_from(["keep", "keep", "keep", "edit", "delete"]))
        if action == "keep":
            out.append(item)
        elif action == "edit":
            out.append(dataclasses.replace(draw(new), **{key: getattr(item, key)}))
    out.extend(draw(st.lists(new, max_size=2)))
    moved: bool = draw(st.booleans())
    if out and moved:  # a moved item changes file numbering, never the bytes
        out.insert(0, out.pop())
    return out


@st.composite
def _next_account(draw: st.DrawFn, account: Account) -> Account:
    cals = []
    for calendar in account.calendars:
        if draw(st.booleans()):
            cals.append(Calendar(calendar.info, tuple(draw(_edited(calendar.events, events(), "uid")))))
        else:
            cals.append(calendar)
    cals.extend(draw(st.lists(calendars(max_events=2), max_size=1)))
    return _account(
        draw(_edited(account.contacts, contacts(), "uid")),
        cals,
        draw(_edited(account.notes, notes(), "id")),
        draw(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"])),
    )


_first = st.builds(
    _account,
    st.lists(contacts(), max_size=4),
    st.lists(calendars(max_events=3), max_size=2),
    st.lists(notes(), max_size=4),
    st.sampled_from(["Europe/Berlin", "UTC"]),
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(first=_first, data=st.data())
def test_archives_with_and_without_the_cache_are_byte_identical_across_edited_runs(
    db: Database, first: Account, data: st.DataObject
) -> None:
    account = first
    with tempfile.TemporaryDirectory() as folder:
        out, cache = Path(folder) / "archives", Path(folder) / "cache"
        for run in range(3):
            if run:
                account = data.draw(_next_account(account), label=f"edits before run {run + 1}")
            with db.session(write=True) as session:
                replace_account(session, account)
            version = data.draw(st.sampled_from(["3.0", "4.0"]), label="vcard_version")
            # A later run is a later time: events that never say when they changed take it as DTSTAMP.
            cached, with_cache, without = _both(db, out, cache, NOW + dt.timedelta(minutes=run), vcard_version=version)
            assert with_cache == without
            events_ = sum(len(c.events) for c in account.calendars)
            for kind, count in (
                ("contacts", len(account.contacts)),
                ("events", events_),
                ("notes", len(account.notes)),
            ):
                assert cached.reuse.hits[kind] + cached.reuse.misses[kind] == count
            # The drill's memo (spans of unchanged runs, items proven before) still compares every item.
            items = len(account.contacts) + events_ + len(account.notes) + len(account.calendars)
            assert cached.drill is not None and (cached.drill.items, cached.drill.differences) == (items, 0)


def _sample(seed: int = 3) -> Account:
    return generate_account(EMAIL, SampleSize(contacts=200, events=300, notes=100, attachment_ratio=0.05), seed=seed)


def _edit_one_percent(account: Account) -> tuple[Account, int, int, int]:
    """The same account with 1 % of its contacts, events and notes edited; the counts edited."""
    contacts_ = list(account.contacts)
    for i in range(0, len(contacts_), 100):
        contacts_[i] = dataclasses.replace(contacts_[i], note=f"edited {i}")
    cals, events_edited = [], 0
    for calendar in account.calendars:
        evs = list(calendar.events)
        for i in range(0, len(evs), 100):
            evs[i] = dataclasses.replace(evs[i], summary=f"edited {i}")
            events_edited += 1
        cals.append(Calendar(calendar.info, tuple(evs)))
    notes_ = list(account.notes)
    for i in range(0, len(notes_), 100):
        notes_[i] = dataclasses.replace(notes_[i], body=f"edited {i}\n")
    edited = dataclasses.replace(account, contacts=tuple(contacts_), calendars=tuple(cals), notes=tuple(notes_))
    return edited, len(range(0, len(contacts_), 100)), events_edited, len(range(0, len(notes_), 100))


def test_reimporting_with_one_percent_edited_reuses_the_other_items(db: Database, tmp_path: Path) -> None:
    account = _sample()
    with db.session(write=True) as session:
        replace_account(session, account)
    out, cache = tmp_path / "archives", tmp_path / "cache"
    first, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    assert first.reuse.hits == {"contacts": 0, "events": 0, "notes": 0}
    events_total = sum(len(c.events) for c in account.calendars)
    assert first.reuse.misses == {"contacts": 200, "events": events_total, "notes": 100}

    same, with_cache, without = _both(db, out, cache, NOW + dt.timedelta(hours=1))  # nothing changed
    assert with_cache == without
    assert same.reuse.misses == {"contacts": 0, "events": 0, "notes": 0}

    edited, contacts_edited, events_edited, notes_edited = _edit_one_percent(account)
    with db.session(write=True) as session:  # the import path: a whole account replaces the old one
        replace_account(session, edited)
    later = NOW + dt.timedelta(days=1)
    repeat, with_cache, without = _both(db, out, cache, later)
    assert with_cache == without
    # The sample's events never say when they changed: DTSTAMP is the export time, a day later
    # now, and their bytes are still reused (the time fills a slot in the cached chunk).
    assert all(e.updated is None and e.created is None for c in edited.calendars for e in c.events)
    assert repeat.reuse.misses == {
        "contacts": contacts_edited,
        "events": events_edited,
        "notes": notes_edited,
    }
    assert repeat.reuse.hits == {
        "contacts": 200 - contacts_edited,
        "events": events_total - events_edited,
        "notes": 100 - notes_edited,
    }


def test_changed_options_are_not_served_from_the_cache(db: Database, tmp_path: Path) -> None:
    with db.session(write=True) as session:
        replace_account(session, _sample())
    out, cache = tmp_path / "archives", tmp_path / "cache"
    _both(db, out, cache, NOW, vcard_version="3.0")
    other, with_cache, without = _both(db, out, cache, NOW, vcard_version="4.0")
    assert with_cache == without
    assert other.reuse.hits["contacts"] == 0
    assert other.reuse.misses["contacts"] == 200


def _flip_inside(path: Path, needle: bytes) -> None:
    raw = bytearray(path.read_bytes())
    at = raw.find(needle)
    assert at >= 0, "the entry to damage is not in the file"
    raw[at + len(needle) // 2] ^= 0x04
    path.write_bytes(bytes(raw))


def test_a_corrupted_cache_entry_is_detected_rebuilt_and_never_copied_into_an_archive(
    db: Database, tmp_path: Path
) -> None:
    account = _sample()
    with db.session(write=True) as session:
        replace_account(session, account)
    out, cache = tmp_path / "archives", tmp_path / "cache"
    _both(db, out, cache, NOW)
    with db.session() as session:
        user = find_user(session, EMAIL)
        assert user is not None
        store = cache / str(user.id) / FILENAME

    # A bit flip inside one stored card, on disk (the cache closed its file: everything is in it).
    victim = account.contacts[7].uid.encode()
    _flip_inside(store, b"UID:" + victim)
    # One entry cut short (a note's text: its front matter first), as a partial write would leave it.
    with sqlite3.connect(store) as raw:
        (note,) = raw.execute(
            "SELECT rowid FROM items WHERE substr(value, 1, 10) = ? ORDER BY key LIMIT 1", (b"---\ntitle:",)
        ).fetchone()
        raw.execute("UPDATE items SET value = substr(value, 1, length(value) - 5) WHERE rowid = ?", (note,))
    raw.close()

    repeat, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    assert sum(repeat.reuse.misses.values()) == 2  # the two damaged entries, made again
    verify_archive(out / repeat.archive.relpath)
    check_archive(out / repeat.archive.relpath)

    # Rebuilt: the next run finds every entry good again.
    again, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    assert sum(again.reuse.misses.values()) == 0


def _exported_once_with_cache(db: Database, tmp_path: Path) -> tuple[Path, Path, Path]:
    """The sample account stored and exported once with a cache: the archive folder, the cache folder, its file."""
    with db.session(write=True) as session:
        replace_account(session, _sample())
    out, cache = tmp_path / "archives", tmp_path / "cache"
    _both(db, out, cache, NOW)
    (store,) = cache.glob(f"*/{FILENAME}")
    return out, cache, store


def test_a_truncated_cache_file_is_dropped_and_the_export_carries_on(db: Database, tmp_path: Path) -> None:
    out, cache, store = _exported_once_with_cache(db, tmp_path)
    with store.open("r+b") as f:
        f.truncate(store.stat().st_size // 3)
    repeat, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    verify_archive(out / repeat.archive.relpath)
    assert repeat.reuse.hits == {"contacts": 0, "events": 0, "notes": 0}


def test_the_cache_folder_can_be_deleted_between_runs(db: Database, tmp_path: Path) -> None:
    import shutil

    with db.session(write=True) as session:
        replace_account(session, _sample())
    out, cache = tmp_path / "archives", tmp_path / "cache"
    _both(db, out, cache, NOW)
    shutil.rmtree(cache)
    repeat, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    assert repeat.reuse.hits == {"contacts": 0, "events": 0, "notes": 0}


def _edit_events(account: Account, every: int, text: str) -> tuple[Account, int]:
    """`account` with every `every`th event of each calendar given the summary `text`; how many were edited."""
    cals, edited = [], 0
    for calendar in account.calendars:
        evs = list(calendar.events)
        for i in range(0, len(evs), every):
            evs[i] = dataclasses.replace(evs[i], summary=f"{text} {i}")
            edited += 1
        cals.append(Calendar(calendar.info, tuple(evs)))
    return dataclasses.replace(account, calendars=tuple(cals)), edited


def test_a_prune_keeps_the_events_of_every_run_it_read_after_edits_were_undone(db: Database, tmp_path: Path) -> None:
    """An edit moves a run's other events into the edited run; undoing it reads the old run again.

    The prune of that run must keep the old run's events: the next edit in the run
    looks them up one by one, and each one dropped would be serialised again.
    """
    account = _sample()
    out, cache = tmp_path / "archives", tmp_path / "cache"
    with db.session(write=True) as session:
        replace_account(session, account)
    _both(db, out, cache, NOW)
    edited, _ = _edit_events(account, 50, "moved")
    with db.session(write=True) as session:
        replace_account(session, edited)
    _both(db, out, cache, NOW + dt.timedelta(hours=1))
    with db.session(write=True) as session:  # the edits undone: the first runs are read again
        replace_account(session, account)
    (store,) = cache.glob(f"*/{FILENAME}")
    with sqlite3.connect(store) as raw:  # due for a prune, as after many runs that changed things
        raw.execute("DELETE FROM meta")
    raw.close()
    undone, with_cache, without = _both(db, out, cache, NOW + dt.timedelta(hours=2))
    assert with_cache == without
    assert undone.reuse.misses == {"contacts": 0, "events": 0, "notes": 0}

    again, count = _edit_events(account, 50, "edited again")
    with db.session(write=True) as session:
        replace_account(session, again)
    repeat, with_cache, without = _both(db, out, cache, NOW + dt.timedelta(hours=3))
    assert with_cache == without
    assert repeat.reuse.misses["events"] == count  # only the edited events, not their runs' others


def test_a_file_where_the_users_cache_folder_belongs_is_removed_and_the_cache_works_again(
    db: Database, tmp_path: Path
) -> None:
    with db.session(write=True) as session:
        replace_account(session, _sample())
    out, cache = tmp_path / "archives", tmp_path / "cache"
    with db.session() as session:
        user = find_user(session, EMAIL)
        assert user is not None
    cache.mkdir()
    (cache / str(user.id)).write_text("not a folder")
    _, with_cache, without = _both(db, out, cache, NOW)  # without the cache, which it cannot open
    assert with_cache == without
    _both(db, out, cache, NOW)  # this one fills the cache again
    repeat, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    assert repeat.reuse.misses == {"contacts": 0, "events": 0, "notes": 0}


def test_a_cache_that_cannot_be_used_says_so_in_the_json_log_with_the_user(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Under the "lifeboat" logger, whose records are the JSON lines (`logs.configure`), with the user's id."""
    out, cache, store = _exported_once_with_cache(db, tmp_path)
    store.write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING):
        _, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    (record,) = [r for r in caplog.records if "export cache" in r.getMessage()]
    assert record.name.startswith("lifeboat.")
    assert record.user_id == int(store.parent.name)  # type: ignore[attr-defined]  # an `extra` field of the line


@pytest.mark.slow  # waits out the cache's 5 s busy timeout
def test_a_locked_cache_is_left_alone_and_serves_the_next_export(db: Database, tmp_path: Path) -> None:
    """Locked (another export's long write, backups) is not damaged: one run goes without it, the next uses it."""
    out, cache, store = _exported_once_with_cache(db, tmp_path)
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        locked = _export(db, out, NOW, cache=cache)  # waits out the cache's busy timeout, then goes without it
    finally:
        holder.close()
    assert locked.reuse.hits == {"contacts": 0, "events": 0, "notes": 0}
    verify_archive(out / locked.archive.relpath)
    repeat, with_cache, without = _both(db, out, cache, NOW)
    assert with_cache == without
    assert repeat.reuse.misses == {"contacts": 0, "events": 0, "notes": 0}
