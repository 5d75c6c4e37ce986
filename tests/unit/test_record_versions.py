"""Content versions: equal records share a digest, any change of content gives another, the store keeps them,
and the encoding never changes (golden digests; the fast encoders against the generic walk)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import tracemalloc
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from account.records import (
    Account,
    Address,
    Alarm,
    Attachment,
    Attendee,
    Blob,
    Calendar,
    CalendarInfo,
    Contact,
    Event,
    Name,
    Note,
    Override,
    Person,
    Typed,
    When,
)
from account.versions import DIGEST_VERSION, _feed_any, record_digest
from store import ContactRow, Database, NoteRow
from store.accounts import replace_account
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendar_infos, events
from tests.strategies.notes import notes


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(contact=contacts())
def test_a_record_rebuilt_from_its_fields_has_the_same_digest(contact: Contact) -> None:
    copy = dataclasses.replace(contact, extra=dict(contact.extra))
    assert record_digest(copy) == record_digest(contact)


def test_every_kind_of_difference_changes_the_digest() -> None:
    base = Contact(uid="u1", formatted_name="Ann", name=Name(given="Ann"), photo=Blob("image/png", b"\x89PNG"))
    variants = [
        dataclasses.replace(base, formatted_name="Anne"),
        dataclasses.replace(base, formatted_name=None),
        dataclasses.replace(base, name=Name(given="Ann", family="")),
        dataclasses.replace(base, name=Name(family="Ann")),  # same text, other field
        dataclasses.replace(base, photo=Blob("image/png", b"\x89PNG\x00")),
        dataclasses.replace(base, categories=("a", "bc")),
        dataclasses.replace(base, categories=("ab", "c")),
        dataclasses.replace(base, extra={"X-A": "1"}),
        dataclasses.replace(base, updated=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        dataclasses.replace(base, updated=dt.datetime(2026, 1, 1)),  # naive is not the same instant
    ]
    digests = {record_digest(v) for v in [base, *variants]}
    assert len(digests) == len(variants) + 1


def test_an_import_keeps_the_version_of_what_did_not_change(db: Database) -> None:
    notes = tuple(Note(id=f"n{i}", title=f"Note {i}", body=f"body {i}\n") for i in range(3))
    account = Account(
        email="v@example.com", display_name=None, timezone="UTC", contacts=(Contact(uid="c"),), notes=notes
    )

    def versions() -> dict[str, str | None]:
        with db.session() as session:
            rows = [*session.execute(select(NoteRow.note_id, NoteRow.content_sha256))]
            rows += session.execute(select(ContactRow.uid, ContactRow.content_sha256))
        return {key: value for key, value in rows}

    with db.session(write=True) as session:
        replace_account(session, account)
    before = versions()
    edited = dataclasses.replace(account, notes=(notes[0], dataclasses.replace(notes[1], body="new\n"), notes[2]))
    with db.session(write=True) as session:
        replace_account(session, edited)
    after = versions()
    assert all(before.values())
    assert {k for k in before if before[k] != after[k]} == {"n1"}
    assert after["n1"] == record_digest(edited.notes[1])


# --- the encoding never changes -------------------------------------------------------------------------------
# Digests are stored (content versions, migration 0010): these were computed by `record_digest` on main at
# 26cdf37, before the per-class encoders, and must never change without a new `DIGEST_VERSION`.
ALICE_DIGESTS = [
    "a746423cdca50e8b6d422de6012c25866bb89c4d2f9bedd4f55ed925ac452b4e",
    "08d1af3d382a237cfb55b1a423b9d220919c9ec68d6db262db7530716629d220",
    "a5d42f7b3a4bce9f997a12f556504cfd86de138a8ef13ef79c0b5f6e78a906a3",
    "9be461a18fab13ba20e06bedc928918181031509f4242eb71bd19b0e61729a8e",
    "0e7fe659f6a762309a8494e1fd591776d1406ddef17f37a14001a5bcc3f1c9c1",
    "b99ad75d680b4669e372d1c8370e31253e3c57b14698ee7d1b921aa503abeb58",
    "4a9e473554ad81ecbdd00eee6dd0a8ba459451e102734949dbfb3139080fa458",
    "efd1ea7d0acfc47941eadfccd11cde10b5d1ff7daf82ef0f706d8d9561300804",
    "523af2af98bb4ae01c7785a2397e3e1ffae780ceaaa98b3f0cecd1b972558fff",
    "8abf98b8093ebfa280abf43372c3d132019ca71bd429cb31f934b2b26e2da20c",
    "ea38e74d933d5a4be3197b541fc7735fd933a6e1ac0e2414e10e9af15eac467e",
    "bc0eba9a446b3ce991001d7f53df32d6a3446dbc64d57fc83dfb59036146b5d5",
]
EDGE_DIGESTS = [
    "75432eaec18a04fc69b5a0f60be4d5fe1d709a0ef5b25e71c8e9ec593b93fc6a",
    "eb19e07db5e79effff2728eb8c4c30e742a71d7f8f21b5934c9beed09ce6c853",
    "553535948619a42bba077cfce746ec6262f9cc7c4892c7e1d4f2d43589d3e284",
    "2d5905b280a6a4aba8820f75d2655f97d461d8f0559885885c6317a181e2100f",
    "84776aeecb354bb47efe15ca11f3aac1c24fa47385cc4b46cf8ca206a8e2ae1c",
    "9877fe426bb0e3dfe7860b52863ae8dec9c1d9951b0b9f8cabf1f1029a34d2a9",
    "85632e0aeb88d485863b788ff6e61cf364f2d39205741e6ebed24764b0bd0264",
    "bc2ab549f07d5656b11ff499edc2f5b29c1597c374bae20a3064c53e5e9f6b16",
    "81b1b7f1fca45f0958e29821b3733a9669433974f61ba940dd0759d07450b0bf",
    "fffc451aa65bd84f2adc7c3bb8dea5c5edc0276cf3386771a0fca49cfffcefd5",
]
LARGE = bytes(range(256)) * 400  # 100 KiB: over JOIN_LIMIT, hashed apart


class Pair(NamedTuple):
    left: Any
    right: Any


class Label(str):
    __slots__ = ()


@dataclass(frozen=True)
class Custom:
    """A dataclass not in account.records: its class name and fields are encoded like any record's."""

    text: Any
    more: Any = None


class NoOffset(dt.tzinfo):
    """A zone that knows no offset: the datetime is aware, its `utcoffset()` None."""

    def utcoffset(self, when: dt.datetime | None) -> None:
        return None

    def dst(self, when: dt.datetime | None) -> None:
        return None

    def tzname(self, when: dt.datetime | None) -> None:
        return None


def edge_records() -> list[Any]:
    """Records in and out of canonical form: every type and shape `record_digest` encodes."""
    aware = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.UTC)
    india = dt.timezone(dt.timedelta(hours=5, minutes=30))
    full = Contact(
        uid="c-1",
        formatted_name="Zoë \ud800 Ωmega",
        name=Name(family="", given="Zoë", additional=None, prefix="Dr.", suffix="𝔘"),
        nickname="",
        organization="A;B,C\\D",
        emails=(Typed("z@example.com", ("home", "internet"), True), Typed("y@example.com")),
        phones=(Typed("+1 555", ("cell",)),),
        addresses=(Address(types=("work",), street="1 Main St\nFloor 2", country="NZ", preferred=True), Address()),
        urls=(Typed("https://example.com/ä"),),
        birthday="--02-29",
        categories=("a", "bc", ""),
        note="line 1\nline 2\t👩‍👩‍👧",
        photo=Blob("image/png", b"\x89PNG\r\n\x1a\n\x00"),
        extra={"X-B": "2", "X-A": "", "RELATED": "urn:uuid:1"},
        created=aware,
        updated=dt.datetime(2026, 3, 29, 1, 30),
    )
    event = Event(
        uid="e-1",
        start=When(datetime=dt.datetime(2026, 10, 25, 2, 30, fold=1), tz="Europe/Berlin"),
        summary="Sync",
        end=When(datetime=dt.datetime(2026, 10, 25, 3, 0, tzinfo=india)),
        rrule="FREQ=WEEKLY;COUNT=3",
        rdates=(When(date=dt.date(2026, 11, 1)), When(datetime=aware)),
        exdates=(When(datetime=dt.datetime(2026, 11, 8, 2, 30), tz="Europe/Berlin"),),
        overrides=(
            Override(When(date=dt.date(2026, 11, 15)), summary="Moved", start=When(date=dt.date(2026, 11, 16))),
        ),
        status="CONFIRMED",
        organizer=Person("boss@example.com", "Boss"),
        attendees=(Attendee("a@example.com", role="REQ-PARTICIPANT", partstat="ACCEPTED"), Attendee("b@x")),
        alarms=(Alarm("-PT15M", "DISPLAY", "Soon"), Alarm("PT0S")),
        categories=("work",),
        created=aware,
        updated=aware,
    )
    note = Note(
        id="n-1",
        title="Big",
        body="# Title\r\n\x00body\n" * 3000,  # bodies are kept byte for byte
        notebook="Work/Projects",
        tags=("x", "y"),
        pinned=True,
        attachments=(Attachment("big.bin", "application/octet-stream", LARGE), Attachment("e", "text/plain", b"")),
        created=aware,
    )
    odd = Contact(
        uid=Label("c-2"),
        formatted_name=7,  # type: ignore[arg-type]  # an int where text belongs
        nickname=True,  # type: ignore[arg-type]
        name=Custom(("nested", ["list"]), {1: None, "k": (b"x", bytearray(b"y"))}),  # type: ignore[arg-type]
        emails=[Typed("l@example.com", ["list", "of", "types"])],  # type: ignore[arg-type]
        categories=Pair("a", -12),  # a NamedTuple: encoded as a tuple
        birthday=dt.date(1999, 12, 31),  # type: ignore[arg-type]
        photo=Blob("image/gif", memoryview(b"GIF89a")),  # type: ignore[arg-type]
        extra=types.MappingProxyType({"X-Z": "z", "X-Y": "y"}),
        created=dt.datetime(2001, 1, 1, tzinfo=NoOffset()),
        updated=dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-23, minutes=-59))),
    )
    info = CalendarInfo("Personal", "#ff0000", None)
    calendar = Calendar(info, (event, Event("e-2", When(date=dt.date(2000, 1, 1)))))
    account = Account("a@example.com", None, "UTC", (Contact(uid=""),), (calendar,), (Note("", "", ""),))
    return [full, Contact(uid=""), event, note, odd, info, calendar, account, Custom(Custom("x")), Custom(LARGE, 0)]


def test_the_sample_accounts_digests_never_change(alice: Account) -> None:
    records: list[Any] = [*alice.contacts]
    for calendar in alice.calendars:
        records += [calendar.info, *calendar.events]
    records += alice.notes
    assert [record_digest(r) for r in records] == ALICE_DIGESTS


def test_the_digest_of_every_kind_of_value_never_changes() -> None:
    """Surrogates, naive, UTC and other offsets, dates, ints, bools, lists, mappings, large bytes, other classes."""
    assert [record_digest(r) for r in edge_records()] == EDGE_DIGESTS


# --- the fast encoders are the generic walk -----------------------------------------------------------------


def generic_digest(record: Any) -> str:
    """The digest as `_feed_any`, the definition of the encoding, gives it on its own."""
    digest = hashlib.sha256(DIGEST_VERSION)
    _feed_any(digest.update, record)
    return digest.hexdigest()


RECORD_CLASSES = [Typed, Address, Name, Blob, Contact, When, Person, Attendee, Alarm, Override, Event, CalendarInfo,
                  Calendar, Attachment, Note, Account]  # fmt: skip
_long_text = st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.sampled_from([90, 300, 23_000]))
_text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(blacklist_categories=()), max_size=8),  # lone surrogates too
    st.sampled_from(["", "\ud800", "a\udfffb", "x" * 255, "é" * 128]),
    _long_text,
)
_bytes = st.binary(max_size=300) | st.sampled_from([b"", b"\x00" * 255, b"\x01" * 256, LARGE])
_zones = st.one_of(
    st.none(),
    st.just(dt.UTC),
    st.timedeltas(dt.timedelta(hours=-23, minutes=-59), dt.timedelta(hours=23, minutes=59)).map(dt.timezone),
    st.timezones(),
    st.just(NoOffset()),
)
_SCALAR_OF = {
    str: _text,
    bytes: _bytes,
    bool: st.booleans(),
    dt.date: st.dates(),
    dt.datetime: st.datetimes(timezones=_zones),
}
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), _text, _bytes, st.datetimes(timezones=_zones), st.dates())


def _of_hint(hint: Any, inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of the shape an annotation names, or sometimes anything (`inner`)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    shaped: list[st.SearchStrategy[Any]] = []
    for option in options:
        origin, args = typing.get_origin(option) or option, typing.get_args(option)
        if option is type(None):
            shaped.append(st.none())
        elif origin is tuple:
            shaped.append(st.lists(_of_hint(args[0], inner), max_size=2).map(lambda items: tuple(items)))
        elif origin is Mapping:
            shaped.append(st.dictionaries(_of_hint(args[0], _scalars), _of_hint(args[1], inner), max_size=3))
        elif option in RECORD_CLASSES:
            shaped.append(_later(option, inner))
        else:
            shaped.append(_SCALAR_OF[option])
    return st.one_of(*shaped, *shaped, *shaped, inner)


def _later(kind: type[Any], inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`_records(kind, inner)`, built when first drawn from (records nest records)."""
    return st.deferred(lambda: _records(kind, inner))


def _records(kind: type[Any], inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(kind)
    return st.builds(kind, **{f.name: _of_hint(hints[f.name], inner) for f in dataclasses.fields(kind)})


def _anything(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    containers = st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
    return containers | st.dictionaries(_scalars, inner, max_size=2) | st.builds(Custom, inner, inner)


_wild = st.recursive(_scalars, _anything, max_leaves=6)
any_records = st.sampled_from(RECORD_CLASSES).flatmap(lambda kind: _records(kind, _wild))
canonical_records = st.one_of(contacts(), events(), notes(), calendar_infos())


@settings(max_examples=examples(250), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(record=any_records)
def test_every_record_class_is_digested_as_the_generic_walk_digests_it(record: Any) -> None:
    """Each record class's generated encoder, on the types it expects, on others and on edge values alike."""
    assert record_digest(record) == generic_digest(record)


@settings(max_examples=examples(150), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(record=canonical_records)
def test_canonical_records_are_digested_as_the_generic_walk_digests_them(record: Any) -> None:
    assert record_digest(record) == generic_digest(record)


def test_a_large_attachment_is_hashed_without_a_copy() -> None:
    """The encoding is hashed as one joined buffer, except that parts over JOIN_LIMIT are not copied into it."""
    data = b"\x01" * (16 << 20)
    note = Note("n", "t", "b", attachments=(Attachment("a.bin", "application/octet-stream", data),))
    tracemalloc.start()
    try:
        digest = record_digest(note)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(data) // 4
    assert digest == generic_digest(note)
