"""The fidelity drill (issue 16): every export reads its archive back and compares it with what went in.

Proof asked for by the issue: 0 differences for alice, for generated accounts
(`account.sample`) and for hypothesis-generated ones, through the store and its
content versions as a run exports them, and in memory; and the exact item and
field when a writer is deliberately broken.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import update

from account.records import Account, Contact, Event, Note
from account.sample import SampleSize, generate_account
from exporters.archive import layout
from exporters.archive.differences import DESCRIBED
from exporters.archive.drill import DrillResult, drill
from exporters.archive.drill_memo import memo_prefix
from exporters.archive.reader import open_archive
from exporters.archive.reuse import deflate_segment
from exporters.ical.writer import stamp_line
from jobs.export import ExportResult, export_user
from jobs.export_cache import FILENAME
from store import ContactRow, Database
from store.accounts import find_user, replace_account
from tests.archives import MemorySource, archive_of
from tests.formats.test_roundtrip import accounts
from tests.profiles import examples

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
SMALL = SampleSize(contacts=40, events=120, notes=25, photo_ratio=0.2, attachment_ratio=0.2, calendars=3)


@pytest.fixture
def exported(db: Database, tmp_path: Path) -> Callable[..., ExportResult]:
    """Export an account already in the test database as a run does (drill on, content versions)."""
    made = iter(range(1000))

    def run(email: str, **options: Any) -> ExportResult:
        with db.session() as session:
            user = find_user(session, email)
            assert user is not None
            return export_user(session, user, tmp_path / "archives", now=NOW, archive_id=f"a{next(made)}", **options)

    return run


@pytest.fixture
def export(db: Database, exported: Callable[..., ExportResult]) -> Callable[..., ExportResult]:
    """Import an account into the test database, then export it (`exported`)."""

    def run(account: Account, **options: Any) -> ExportResult:
        with db.session(write=True) as session:
            replace_account(session, account)
        return exported(account.email, **options)

    return run


def _in_memory(account: Account) -> DrillResult:
    """The drill over an archive written without the store: the records themselves are what went in."""
    with tempfile.TemporaryDirectory() as folder:
        path = archive_of(account, Path(folder), "a.zip", NOW)
        with open_archive(path) as archive:
            return drill(archive, MemorySource(account), kinds=("contacts", "calendars", "notes"))


def _items(account: Account) -> int:
    return (
        len(account.contacts)
        + len(account.calendars)
        + sum(len(c.events) for c in account.calendars)
        + len(account.notes)
    )


def test_alice_reads_back_with_no_difference(export: Callable[..., ExportResult], alice: Account) -> None:
    result = export(alice)
    assert result.drill is not None
    assert (result.drill.items, result.drill.differences, result.drill.lines()) == (_items(alice), 0, [])
    assert result.drill.summary() == f"Read back {_items(alice)} items: 0 differences"


def test_alice_reads_back_with_no_difference_from_a_cached_repeat_and_in_vcard_4(
    export: Callable[..., ExportResult], alice: Account, tmp_path: Path
) -> None:
    for _ in range(2):  # the first fills the cache, the second reuses every item's bytes
        cached = export(alice, cache_dir=tmp_path / "cache")
        assert cached.drill is not None and cached.drill.differences == 0
    assert sum(cached.reuse.hits.values()) > 0
    four = export(alice, vcard_version="4.0")
    assert four.drill is not None and (four.drill.items, four.drill.differences) == (_items(alice), 0)


def test_a_generated_account_reads_back_with_no_difference(export: Callable[..., ExportResult]) -> None:
    account = generate_account("generated@example.com", SMALL, seed=5)
    result = export(account)
    assert result.drill is not None
    assert (result.drill.items, result.drill.differences) == (_items(account), 0), result.drill.lines()


def test_the_drill_reads_each_event_group_our_writer_emits_straight_from_its_bytes_overrides_too(
    export: Callable[..., ExportResult], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import exporters.archive.drill_memo
    import exporters.archive.drill_written

    account = generate_account("generated@example.com", SMALL, seed=5)
    from exporters.ical.quick import read_block  # what drill_memo and drill_written call

    taken: list[bool] = []

    def counting(data: bytes) -> Any:
        event = read_block(data)
        taken.append(event is not None)
        return event

    monkeypatch.setattr(exporters.archive.drill_memo, "read_block", counting)
    monkeypatch.setattr(exporters.archive.drill_written, "read_block", counting)
    result = export(account, cache_dir=tmp_path / "cache")  # a first export: every group read (as written)
    assert result.drill is not None and result.drill.method == "memo"
    assert (result.drill.items, result.drill.differences) == (_items(account), 0), result.drill.lines()
    events = [e for c in account.calendars for e in c.events]
    assert len(taken) == len(events)
    assert sum(taken) == len(events) > sum(not e.overrides for e in events)  # none left to the stream


def test_a_generated_account_in_two_processes_reads_back_with_no_difference(
    export: Callable[..., ExportResult],
) -> None:
    account = generate_account("split@example.com", SMALL, seed=6)
    result = export(account, processes=2)  # the calendars made in a second process
    assert result.drill is not None
    assert (result.drill.items, result.drill.differences) == (_items(account), 0), result.drill.lines()


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(account=accounts)
def test_hypothesis_accounts_read_back_with_no_difference(
    export: Callable[..., ExportResult], account: Account
) -> None:
    through_the_store = export(account)
    assert through_the_store.drill is not None
    assert through_the_store.drill.differences == 0, through_the_store.drill.lines()
    assert through_the_store.drill.items == _items(account)
    in_memory = _in_memory(account)
    assert (in_memory.items, in_memory.differences) == (_items(account), 0), in_memory.lines()


# --- a writer broken on purpose: the drill names the item and the field -------------------------


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Break one writer as the bundle calls it (`exporters.archive.layout.<name>`): its record goes
    through `change` first (with `many`, each record of the iterable at argument `at`)."""

    def breaks(name: str, change: Callable[[Any], Any], *, at: int = 0, many: bool = False) -> None:
        writer = getattr(layout, name)

        def wrong(*args: Any, **kwargs: Any) -> Any:
            given = list(args)
            given[at] = (change(r) for r in given[at]) if many else change(given[at])
            return writer(*given, **kwargs)

        monkeypatch.setattr(layout, name, wrong)

    return breaks


def _first_email_dropped(contact: Contact) -> Contact:
    return dataclasses.replace(contact, emails=contact.emails[1:]) if contact.uid == "c-0001" else contact


def test_a_vcard_writer_that_drops_an_email_is_named_by_contact_and_field(
    export: Callable[..., ExportResult], alice: Account, broken: Callable[..., None]
) -> None:
    broken("contact_to_vcard", _first_email_dropped)
    result = export(alice)
    assert result.drill is not None and result.drill.differences == 1
    (first, *rest) = result.drill.described
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    assert (first.kind, first.item, first.field) == ("contact", "c-0001", "emails[0].value")
    assert first.expected == repr(bob.emails[0].value) and first.found == repr(bob.emails[1].value)
    assert result.drill.lines()[0].startswith("contact c-0001: emails[0].value: expected ")
    assert any(d.field == f"emails[{len(bob.emails) - 1}]" and d.found == "absent" for d in rest)


def _summary_changed(event: Event) -> Event:
    return dataclasses.replace(event, summary="Wrong title") if event.rrule else event


def test_an_icalendar_writer_that_alters_a_summary_is_named_by_event_and_field(
    export: Callable[..., ExportResult], alice: Account, broken: Callable[..., None], tmp_path: Path
) -> None:
    broken("iter_calendar", _summary_changed, at=1, many=True)  # a first export writes whole calendars
    broken("event_chunk", _summary_changed)  # a repeat writes changed events one by one
    recurring = [e for c in alice.calendars for e in c.events if e.rrule]
    assert recurring
    for options in ({}, {"cache_dir": tmp_path / "cache"}):
        result = export(alice, **options)
        assert result.drill is not None and result.drill.differences == len(recurring)
        lines = result.drill.lines()
        for event in recurring:
            assert f"event {event.uid}: summary: expected {event.summary!r}, found 'Wrong title'" in lines


def _tags_dropped(note: Note) -> Note:
    return dataclasses.replace(note, tags=()) if note.tags else note


def test_a_markdown_writer_that_drops_tags_is_named_by_note_and_field(
    export: Callable[..., ExportResult], alice: Account, broken: Callable[..., None]
) -> None:
    broken("note_text", _tags_dropped)
    tagged = [n for n in alice.notes if n.tags]
    result = export(alice)
    assert result.drill is not None and result.drill.differences == len(tagged)
    lines = result.drill.lines()
    for note in tagged:
        assert f"note {note.id}: tags[0]: expected {note.tags[0]!r}, found absent" in lines


def test_a_difference_shows_binary_values_by_size_and_hash_not_content(
    export: Callable[..., ExportResult], alice: Account, broken: Callable[..., None]
) -> None:
    with_photo = next(c for c in alice.contacts if c.photo is not None)

    def photo_cut(contact: Contact) -> Contact:
        if contact.uid != with_photo.uid or contact.photo is None:
            return contact
        return dataclasses.replace(contact, photo=dataclasses.replace(contact.photo, data=contact.photo.data[:3]))

    broken("contact_to_vcard", photo_cut)
    result = export(alice)
    assert result.drill is not None
    (difference,) = result.drill.described
    assert (difference.item, difference.field) == (with_photo.uid, "photo.data")
    assert difference.expected.startswith(f"{len(with_photo.photo.data):,} bytes (SHA-256 ")  # type: ignore[union-attr]
    assert difference.found.startswith("3 bytes (SHA-256 ")


def test_a_stale_content_version_is_no_difference_when_the_record_comes_back_equal(
    export: Callable[..., ExportResult], exported: Callable[..., ExportResult], alice: Account, db: Database
) -> None:
    export(alice)
    with db.session(write=True) as session:
        session.execute(update(ContactRow).values(content_sha256="0" * 64))
    again = exported(alice.email)  # every contact's digest differs: each is loaded and compared field by field
    assert again.drill is not None and (again.drill.items, again.drill.differences) == (_items(alice), 0)


def test_a_contact_missing_from_the_archive_is_named(
    export: Callable[..., ExportResult], alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    cards = layout.Bundle._cards

    def one_less(bundle: layout.Bundle) -> Iterator[tuple[str, str, bytes, bytes]]:
        yield from list(cards(bundle))[:-1]

    monkeypatch.setattr(layout.Bundle, "_cards", one_less)
    result = export(alice)
    assert result.drill is not None and result.drill.differences == 1
    assert result.drill.lines() == [
        f"contact {alice.contacts[-1].uid}: (whole item): expected a contact, found missing"
    ]


def test_a_card_and_an_event_our_readers_refuse_are_named_and_every_other_item_is_still_compared(
    export: Callable[..., ExportResult], alice: Account, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The writers as the bundle calls them (`broken` above reaches them the same way).
    card_writer, calendar_writer, event_writer = (
        getattr(layout, name) for name in ("contact_to_vcard", "iter_calendar", "event_chunk")
    )
    bob = next(c for c in alice.contacts if c.uid == "c-0001")
    dated = next(e for c in alice.calendars for e in c.events if e.start.date is not None)

    def card_without_colon(contact: Contact, *args: Any, **kwargs: Any) -> bytes:
        card: bytes = card_writer(contact, *args, **kwargs)
        return card.replace(b"\r\nFN:", b"\r\nFN") if contact.uid == bob.uid else card

    def undated(chunk: bytes) -> bytes:
        return chunk.replace(b"DTSTART;VALUE=DATE:", b"DTSTART;VALUE=DATE:x")

    def unreadable_dates(*args: Any, **kwargs: Any) -> Iterator[bytes]:  # a first export: whole calendars
        return (undated(chunk) for chunk in calendar_writer(*args, **kwargs))

    def unreadable_date(*args: Any, **kwargs: Any) -> bytes:  # with the item cache: event by event
        return undated(event_writer(*args, **kwargs))

    monkeypatch.setattr(layout, "contact_to_vcard", card_without_colon)
    monkeypatch.setattr(layout, "iter_calendar", unreadable_dates)
    monkeypatch.setattr(layout, "event_chunk", unreadable_date)
    dated_events = [e for c in alice.calendars for e in c.events if e.start.date is not None]
    for options in ({"cache_dir": tmp_path / "cache"}, {}):  # read in full, and through the memo's split
        result = export(alice, **options)
        assert result.drill is not None
        assert (result.drill.items, result.drill.differences) == (_items(alice), 1 + len(dated_events))
        lines = result.drill.lines()
        assert lines[0].startswith(f"contact {bob.uid}: (read back): expected readable, found unreadable: line ")
        assert "is not a vCard property" in lines[0]
        assert f"event {dated.uid}: (read back): expected readable, found unreadable: DTSTART " in "\n".join(lines)
        assert all(line.startswith(("contact", "event")) for line in lines)  # nothing else differs


def test_what_staff_see_of_a_difference_names_standard_properties_only_never_a_users_own() -> None:
    from exporters.archive.differences import Difference

    def where(field: str) -> str:
        return Difference("contact", "c-0001", field, "'a'", "'b'").where()

    assert where("emails[1].value") == "contact emails[1].value"
    assert where("extra['GENDER']") == "contact extra['GENDER']"
    for own in ("X-HIV-STATUS-OF-ANNA", "x-anniversary-with-bob", "Anna's diagnosis", "X-A\\'B"):
        assert where(f"extra[{own!r}]") == "contact extra[…]", own
        assert where(f"extra[{own!r}].params") == "contact extra[…].params", own


# --- the memo: a repeat export parses only what changed, and never hides a change ---------------


def _memo_skips(account: Account) -> int:
    """What a fully warm memo skips: every calendar header, contact, event and note without attachments."""
    events = sum(len(c.events) for c in account.calendars)
    return len(account.calendars) + len(account.contacts) + events + sum(not n.attachments for n in account.notes)


def test_a_repeat_export_parses_only_what_changed_since_the_last_drill(
    export: Callable[..., ExportResult], alice: Account, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = export(alice, cache_dir=cache)
    assert first.drill is not None and (first.drill.method, first.drill.skipped) == ("memo", 0)
    again = export(alice, cache_dir=cache)
    assert again.drill is not None and again.drill.skipped == _memo_skips(alice)
    assert (again.drill.items, again.drill.differences) == (_items(alice), 0)
    changed = dataclasses.replace(alice.contacts[0], note="edited")
    edited = dataclasses.replace(alice, contacts=(changed, *alice.contacts[1:]))
    third = export(edited, cache_dir=cache)
    assert third.drill is not None and third.drill.skipped == _memo_skips(alice) - 1
    assert (third.drill.items, third.drill.differences) == (_items(alice), 0)
    recoloured = dataclasses.replace(
        alice.calendars[0], info=dataclasses.replace(alice.calendars[0].info, color="#00ff00")
    )
    fourth = export(dataclasses.replace(edited, calendars=(recoloured, *alice.calendars[1:])), cache_dir=cache)
    assert fourth.drill is not None and fourth.drill.skipped == _memo_skips(alice) - 1  # its header, read again
    assert (fourth.drill.items, fourth.drill.differences) == (_items(alice), 0)


def test_a_repeat_takes_unchanged_members_whole_and_still_parses_only_what_changed_after_a_prune(
    db: Database, alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import exporters.archive.drill_memo
    import jobs.export_cache

    monkeypatch.setattr(jobs.export_cache, "PRUNE_SLACK", 0.0)  # every repeat drops what it did not use
    cache = tmp_path / "cache"

    def run(account: Account, day: int) -> ExportResult:
        with db.session(write=True) as session:
            replace_account(session, account)
        with db.session() as session:
            user = find_user(session, account.email)
            assert user is not None
            now = NOW + dt.timedelta(days=day)  # another export time: each stamped DTSTAMP line differs
            return export_user(session, user, tmp_path / "a", now=now, archive_id=f"d{day}", cache_dir=cache)

    first = run(alice, 0)
    assert first.drill is not None and first.drill.skipped == 0
    (calendar, *_) = first.info.manifest.meta["layout"]["calendars"]
    with open_archive(first.info.path) as archive:  # type: ignore[arg-type]
        assert stamp_line(NOW) in b"".join(archive.member_chunks(calendar))

    def unsplittable(*_args: Any) -> None:
        raise AssertionError("a member proven before was split into items again")

    with monkeypatch.context() as patched:  # runs of events and cards are taken as spans, never cut up
        patched.setattr(exporters.archive.drill_memo.CalendarSplit, "group", unsplittable)
        patched.setattr(exporters.archive.drill_memo.CardCursor, "card", unsplittable)
        for day in (1, 2):  # the second of these prunes after a run that read no item key
            again = run(alice, day)
            assert again.drill is not None and again.drill.skipped == _memo_skips(alice)
            assert (again.drill.items, again.drill.differences) == (_items(alice), 0)
    contact = dataclasses.replace(alice.contacts[0], note="edited")
    first_calendar = alice.calendars[0]
    event = dataclasses.replace(first_calendar.events[0], summary="edited")
    edited = dataclasses.replace(
        alice,
        contacts=(contact, *alice.contacts[1:]),
        calendars=(dataclasses.replace(first_calendar, events=(event, *first_calendar.events[1:])),),
    )
    changed = run(edited, 3)  # the items' proofs outlived the prunes: only the edited items are parsed,
    # and the edited event's calendar header, which the reader reads before it
    assert changed.drill is not None and changed.drill.skipped == _memo_skips(edited) - 3
    assert (changed.drill.items, changed.drill.differences) == (_items(edited), 0)


def test_a_span_of_proven_event_groups_is_kept_as_written_and_nothing_cut_short_is_read_as_one() -> None:
    from exporters.archive.drill_memo import Span

    spans = {
        bytes([n]) * 32: Span(100 + n, bytes([n + 1]) * 32, tuple(bytes([n, i]) * 16 for i in range(n))) for n in (1, 3)
    }
    packed = b"".join(span.pack(key) for key, span in spans.items())
    assert Span.unpack_all(packed) == spans
    for cut in range(1, len(packed)):
        if cut not in (len(spans[bytes([1]) * 32].pack(bytes([1]) * 32)),):
            assert Span.unpack_all(packed[:cut]) == {}, cut


def test_a_calendar_is_taken_span_by_span_and_group_by_group_however_it_is_cut_into_chunks() -> None:
    from exporters.archive.drill_memo import CalendarSplit, Unsplittable

    head = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    a = b"BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n"
    override = b"BEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID:20260101T000000Z\r\nEND:VEVENT\r\n"
    b = b"BEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\n"
    member = head + a + override + b + b"END:VCALENDAR\r\n"
    for size in range(1, len(member) + 1):
        split = CalendarSplit(member[i : i + size] for i in range(0, len(member), size))
        assert split.read_head() == head
        assert split.peek(len(a + override)) == a + override  # a span: taken whole, not cut
        split.skip(len(a + override))
        assert split.group() == b and split.group() is None
        split.finish()
    split = CalendarSplit([member])
    split.read_head()
    assert split.group() == a + override and split.peek(len(member)) is None
    with pytest.raises(Unsplittable):  # an event left over is not the end
        split.finish()


def test_the_memo_never_hides_a_writer_broken_after_a_clean_drill(
    export: Callable[..., ExportResult], alice: Account, tmp_path: Path, broken: Callable[..., None]
) -> None:
    cache = tmp_path / "cache"
    export(alice, cache_dir=cache)  # a clean drill: every item proven and remembered
    (store,) = cache.glob(f"*/{FILENAME}")
    ledger, spans = memo_prefix("ledger"), memo_prefix("spans")
    with sqlite3.connect(store) as raw:  # the items' bytes go, the drill's ledgers and spans of what it proved stay
        deleted = raw.execute(
            "DELETE FROM items WHERE substr(key, 1, ?) NOT IN (?, ?)", (len(ledger), ledger, spans)
        ).rowcount
        assert deleted > 0
    raw.close()
    broken("contact_to_vcard", _first_email_dropped)
    broken("event_chunk", _summary_changed)
    broken("iter_calendar", _summary_changed, at=1, many=True)
    broken("note_text", _tags_dropped)
    result = export(alice, cache_dir=cache)  # serialised again, by the broken writers
    recurring = [e for c in alice.calendars for e in c.events if e.rrule]
    tagged = sum(bool(n.tags) for n in alice.notes)
    assert result.drill is not None and result.drill.differences == 1 + len(recurring) + tagged
    assert result.drill.lines()[0].startswith("contact c-0001: emails[0].value: expected ")
    assert result.drill.skipped > 0  # the items the broken writers left as they were are still proven


def test_members_not_laid_out_as_our_writers_lay_them_out_are_read_in_full() -> None:
    from exporters.archive.drill_memo import CalendarSplit, Unsplittable, split_cards

    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n"
    assert list(split_cards([card[:7], card[7:] + card])) == [card, card]
    for odd in (card + b"trailing", b"FN:B\r\n" + card, card.replace(b"\r\nEND", b"\r\nBEGIN:VCARD\r\nEND")):
        with pytest.raises(Unsplittable):
            list(split_cards([odd]))
    head = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    event = b"BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n"
    override = b"BEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID:20260101T000000Z\r\nEND:VEVENT\r\n"
    split = CalendarSplit([head + event, override + b"BEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"])
    assert list(split.groups()) == [event + override, b"BEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\n"]
    assert split.head == head
    with pytest.raises(Unsplittable):
        list(CalendarSplit([head + event + b"BEGIN:VTIMEZONE\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n"]).groups())


def test_a_drill_that_fails_itself_keeps_the_export_and_says_the_check_did_not_complete(
    export: Callable[..., ExportResult],
    alice: Account,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import jobs.export

    def crash(*_args: Any, **_kwargs: Any) -> DrillResult:
        raise RuntimeError(f"a bug that quotes {alice.contacts[0].uid}")

    monkeypatch.setattr(jobs.export, "drill", crash)
    result = export(alice)
    assert result.info.path is not None and result.info.path.exists()  # the verified archive is kept
    assert result.drill is not None and result.drill.differences == 1
    assert result.drill.lines() == [
        "archive (read back): (drill): expected completed, found stopped by an internal error"
    ]
    (record,) = [r for r in caplog.records if r.getMessage() == "fidelity drill failed"]
    assert record.__dict__["error"] == "RuntimeError" and alice.contacts[0].uid not in str(record.__dict__)


def test_a_card_file_that_is_not_its_card_in_the_address_book_is_named(
    export: Callable[..., ExportResult], alice: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact_entries = layout.Bundle._contact_entries

    def one_card_file_differs(bundle: layout.Bundle, spool: Any) -> Iterator[Any]:
        for entry in contact_entries(bundle, spool):
            if isinstance(entry.segments, list) and b"UID:c-0001" in entry.segments[0][0]:
                wrong = entry.segments[0][0].replace(b"END:VCARD", b"NOTE:not the same\r\nEND:VCARD")
                entry = dataclasses.replace(entry, segments=[(wrong, deflate_segment(wrong))])
            yield entry  # the address book (its segments a stream) keeps the right card

    monkeypatch.setattr(layout.Bundle, "_contact_entries", one_card_file_differs)
    result = export(alice, cache_dir=tmp_path / "cache")
    assert result.drill is not None and result.drill.differences == 1
    (line,) = result.drill.lines()
    assert line.startswith("contact c-0001: (card file): expected its card, found contacts/cards/Dr. Bob M")


# --- a first export's drill, done as the bundle writes (`exporters.archive.drill_written`) -------------


@pytest.fixture
def read_back(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The members the drill reads back from the archive instead of taking what was drilled as written."""
    import exporters.archive.drill_memo as memo  # what drill_written falls back on

    taken: list[str] = []
    contacts, calendar, notes = memo.contacts_remembered, memo.calendar_remembered, memo.notes_remembered

    def contacts_read(*args: Any) -> None:
        taken.append("contacts")
        contacts(*args)

    def calendar_read(*args: Any) -> None:
        taken.append(args[-1])  # the calendar's path
        calendar(*args)

    def notes_read(*args: Any) -> None:
        taken.append("notes")
        notes(*args)

    monkeypatch.setattr(memo, "contacts_remembered", contacts_read)
    monkeypatch.setattr(memo, "calendar_remembered", calendar_read)
    monkeypatch.setattr(memo, "notes_remembered", notes_read)
    return taken


def test_a_first_export_drills_its_cards_events_and_notes_as_written_and_reads_none_of_them_back(
    export: Callable[..., ExportResult], alice: Account, read_back: list[str], tmp_path: Path
) -> None:
    result = export(alice, cache_dir=tmp_path / "cache")
    assert result.drill is not None and read_back == []
    assert (result.drill.items, result.drill.differences, result.drill.method) == (_items(alice), 0, "memo")
    again = export(alice, cache_dir=tmp_path / "cache")  # its proofs are the read-back drill's: nothing parsed
    assert again.drill is not None and again.drill.skipped == _memo_skips(alice)


def test_a_writer_broken_on_a_first_export_is_named_as_the_read_back_drill_names_it(
    export: Callable[..., ExportResult],
    alice: Account,
    broken: Callable[..., None],
    read_back: list[str],
    tmp_path: Path,
) -> None:
    broken("contact_to_vcard", _first_email_dropped)
    broken("iter_calendar", _summary_changed, at=1, many=True)
    broken("event_chunk", _summary_changed)
    broken("note_text", _tags_dropped)
    as_written = export(alice, cache_dir=tmp_path / "cache")
    assert read_back == []
    read_whole = export(alice)  # no cache: every member read back from the archive
    assert as_written.drill is not None and read_whole.drill is not None
    assert as_written.drill.differences == read_whole.drill.differences
    assert 1 < as_written.drill.differences < DESCRIBED  # every difference in words, the first few in any order
    assert sorted(as_written.drill.lines()) == sorted(read_whole.drill.lines())


def assert_every_member_read_back(result: ExportResult, account: Account, read_back: list[str]) -> None:
    """The drill compared every item and found no difference, by reading each member back from the archive."""
    assert result.drill is not None and (result.drill.items, result.drill.differences) == (_items(account), 0)
    assert read_back == ["contacts", *result.info.manifest.meta["layout"]["calendars"], "notes"]


def test_a_member_whose_bytes_are_not_what_was_drilled_is_read_back_from_the_archive(
    export: Callable[..., ExportResult],
    alice: Account,
    read_back: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import exporters.archive.drill_written as written

    done = written.WrittenDrill.done

    def misremembered(self: written.WrittenDrill, found: written.WrittenCalendar) -> None:
        done(self, dataclasses.replace(found, sha256="0" * 64))

    drilled = written.CardsWatch.drilled

    def other_book(self: written.CardsWatch, *args: Any) -> Any:
        self.book = hashlib.sha256(b"not the address book")
        return drilled(self, *args)

    notes_drilled = written.NotesWatch.drilled

    def other_attachment(self: written.NotesWatch, *args: Any) -> Any:
        path, _ = self.files[-1]  # the last file read back (a note or an attachment): other bytes listed
        self.files[-1] = (path, "0" * 64)
        return notes_drilled(self, *args)

    monkeypatch.setattr(written.WrittenDrill, "done", misremembered)
    monkeypatch.setattr(written.CardsWatch, "drilled", other_book)
    monkeypatch.setattr(written.NotesWatch, "drilled", other_attachment)
    assert_every_member_read_back(export(alice, cache_dir=tmp_path / "cache"), alice, read_back)


def test_a_calendar_with_no_event_is_read_back_and_the_others_taken_as_drilled_when_written(
    export: Callable[..., ExportResult], alice: Account, read_back: list[str], tmp_path: Path
) -> None:
    first, *others = alice.calendars
    account = dataclasses.replace(alice, calendars=(dataclasses.replace(first, events=()), *others))
    result = export(account, cache_dir=tmp_path / "cache")
    assert result.drill is not None and (result.drill.items, result.drill.differences) == (_items(account), 0)
    assert read_back == result.info.manifest.meta["layout"]["calendars"][:1]  # its header is everything


def test_a_written_drill_that_fails_itself_leaves_the_export_and_the_read_back_drill_to_it(
    export: Callable[..., ExportResult],
    alice: Account,
    read_back: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import exporters.archive.drill_written as written

    def failing(*_args: Any) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(written, "read_block", failing)
    monkeypatch.setattr(written, "cards_read_back", failing)
    monkeypatch.setattr(written, "read_note", failing)
    assert_every_member_read_back(export(alice, cache_dir=tmp_path / "cache"), alice, read_back)


def test_a_split_exports_calendars_are_drilled_as_written_in_its_second_process(
    export: Callable[..., ExportResult], read_back: list[str], tmp_path: Path
) -> None:
    account = generate_account("split@example.com", SMALL, seed=6)
    result = export(account, processes=2, cache_dir=tmp_path / "cache")
    assert result.drill is not None and read_back == []
    assert (result.drill.items, result.drill.differences) == (_items(account), 0), result.drill.lines()
    again = export(account, cache_dir=tmp_path / "cache")  # the second process kept its proofs in the memo
    assert again.drill is not None and again.drill.skipped == _memo_skips(account)
