"""Plain records for one user's data: the contract between store, exporters and importers.

Why plain frozen dataclasses: exporters must be pure (no ORM rows, no Flask), and
round-trip tests need value equality. Each class mirrors one `$def` of
`account.schema.json`; `None` means "absent", tuples keep order.

Canonical form (applied once, on the way in, by `account.canonical`): text never
contains CR or control characters other than TAB and LF; empty optional strings
are `None`; absolute datetimes are UTC; created/updated are aware UTC datetimes.
The Markdown body of a note is the one exception: it is kept byte for byte.
No string anywhere, the body included, contains U+0000: it becomes U+FFFD (the
NUL rule, `account.canonical.NUL_REPLACEMENT`), and every value fits what the
store holds on every database (`account.storable`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

FORMAT_VERSION = 1
# The kinds of data an account holds, in the order archives write them (a user may export some only).
KINDS = ("contacts", "calendars", "notes")
# The largest attachment, and note file (front matter and text), an account may hold: each is one file
# of the archive that reading it back holds in memory whole (`exporters.archive.reader.MAX_WHOLE_MEMBER`),
# so import refuses anything larger rather than make an archive that restore would refuse.
MAX_FILE_BYTES = 64 << 20
MAX_NOTE_TEXT_BYTES = MAX_FILE_BYTES - (1 << 20)  # leaves a MiB for the note's front matter


R = TypeVar("R")
_NO_VALUE = object()


def plain_init(cls: type[R]) -> type[R]:
    """Give frozen dataclass `cls` an `__init__` that fills the instance's `__dict__` directly.

    Why: a frozen dataclass's generated `__init__` sets each field through
    `object.__setattr__` (the cost the dataclasses documentation warns of), and an
    export builds every record twice (reading the store, reading the archive back in
    its drill): 130,000 at 1x HEAVY. The same signature, defaults and factories, and
    so the same object: an `Event` costs 1.27 us instead of 5.09 us, a `When` 0.82
    instead of 1.35 (timeit, one process, loaded machine). Sound because no record
    has `__post_init__`, `InitVar`s or fields left out of `__init__`: checked here,
    and tests/unit/test_records.py holds each class's objects equal to the generated
    `__init__`'s (kept as `__init__.dataclass_init`).
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or any(not f.init or f.kw_only or not f.compare for f in fields):
        raise TypeError(f"{cls.__name__}: plain_init covers plain fields only")
    params, body, names = [], [], {"_NO_VALUE": _NO_VALUE}
    for f in fields:
        if f.default is not dataclasses.MISSING:
            params.append(f"{f.name}=_default_{f.name}")
            names[f"_default_{f.name}"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            params.append(f"{f.name}=_NO_VALUE")
            names[f"_factory_{f.name}"] = f.default_factory
            body.append(f"if {f.name} is _NO_VALUE: {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
    body += ["values = self.__dict__", *(f"values[{f.name!r}] = {f.name}" for f in fields)]
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(f"    {line}" for line in body)
    made: dict[str, Any] = {}
    exec(source, names, made)  # noqa: S102  # field names only, as dataclasses itself makes `__init__`
    init = made["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.dataclass_init = cls.__init__
    cls.__init__ = init  # type: ignore[method-assign]
    cls.__eq__ = _fields_equal  # type: ignore[method-assign]
    return cls


def _fields_equal(self: object, other: object) -> Any:  # bool, or NotImplemented for another class
    """A record's `==`: dataclasses' own, by the instances' `__dict__` (which `plain_init` fills with the fields).

    Why: the generated `__eq__` builds a tuple of every field on each side (a `Contact`
    has 21) before comparing; the fidelity drill compares each of an export's 65,000
    items read back with its record (1x HEAVY). Comparing the two dicts does the same
    comparisons in C: 1x HEAVY's events and cards in one process took 0.20 s, 0.11 s
    here (best of 5, loaded machine). Sound for the reasons `plain_init` is (no other
    attribute is ever set; no field has `compare=False`, checked in `plain_init`), and
    the hash dataclasses made from the fields stays: equal records still hash alike.
    tests/unit/test_records.py holds it equal to the generated one.
    """
    if other.__class__ is not self.__class__:
        return NotImplemented
    return self.__dict__ == other.__dict__


@plain_init
@dataclass(frozen=True)
class Typed:
    """An email, phone, URL or chat handle with its TYPE parameters."""

    value: str
    types: tuple[str, ...] = ()
    preferred: bool = False


@plain_init
@dataclass(frozen=True)
class Address:
    types: tuple[str, ...] = ()
    po_box: str | None = None
    extended: str | None = None
    street: str | None = None
    locality: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    label: str | None = None
    preferred: bool = False


@plain_init
@dataclass(frozen=True)
class Name:
    family: str | None = None
    given: str | None = None
    additional: str | None = None
    prefix: str | None = None
    suffix: str | None = None


@plain_init
@dataclass(frozen=True)
class Blob:
    """Binary content with its media type (contact photo)."""

    media_type: str
    data: bytes


@plain_init
@dataclass(frozen=True)
class Contact:
    uid: str
    formatted_name: str | None = None
    name: Name | None = None
    nickname: str | None = None
    organization: str | None = None
    department: str | None = None
    title: str | None = None
    role: str | None = None
    emails: tuple[Typed, ...] = ()
    phones: tuple[Typed, ...] = ()
    addresses: tuple[Address, ...] = ()
    urls: tuple[Typed, ...] = ()
    impps: tuple[Typed, ...] = ()
    birthday: str | None = None  # YYYY-MM-DD or --MM-DD
    anniversary: str | None = None  # same forms as birthday
    categories: tuple[str, ...] = ()
    note: str | None = None
    photo: Blob | None = None
    # Other vCard properties by name (X-..., RELATED, ...), kept verbatim.
    extra: Mapping[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


@plain_init
@dataclass(frozen=True)
class When:
    """A point in time as calendars see it.

    Exactly one of `date` (all-day) or `datetime` is set. A naive `datetime` is
    floating when `tz` is None, or wall-clock time in the IANA zone `tz`; an
    aware `datetime` is absolute and always UTC in canonical form.
    """

    date: dt.date | None = None
    datetime: dt.datetime | None = None
    tz: str | None = None

    @property
    def is_all_day(self) -> bool:
        return self.date is not None

    @property
    def is_floating(self) -> bool:
        return self.datetime is not None and self.datetime.tzinfo is None and self.tz is None


@plain_init
@dataclass(frozen=True)
class Person:
    email: str
    name: str | None = None


@plain_init
@dataclass(frozen=True)
class Attendee:
    email: str
    name: str | None = None
    role: str | None = None
    partstat: str | None = None


@plain_init
@dataclass(frozen=True)
class Alarm:
    trigger: str  # RFC 5545 duration, e.g. -PT15M
    action: str | None = None  # DISPLAY, EMAIL or AUDIO
    description: str | None = None


@plain_init
@dataclass(frozen=True)
class Override:
    """A changed instance of a recurring event (RECURRENCE-ID)."""

    recurrence_id: When
    summary: str | None = None
    description: str | None = None
    location: str | None = None
    start: When | None = None
    end: When | None = None
    status: str | None = None


@plain_init
@dataclass(frozen=True)
class Event:
    uid: str
    start: When
    summary: str | None = None
    description: str | None = None
    location: str | None = None
    end: When | None = None
    rrule: str | None = None
    rdates: tuple[When, ...] = ()
    exdates: tuple[When, ...] = ()
    overrides: tuple[Override, ...] = ()
    status: str | None = None  # TENTATIVE, CONFIRMED, CANCELLED
    transparency: str | None = None  # OPAQUE, TRANSPARENT
    organizer: Person | None = None
    attendees: tuple[Attendee, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    categories: tuple[str, ...] = ()
    url: str | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


@plain_init
@dataclass(frozen=True)
class CalendarInfo:
    """A calendar without its events, so exporters can stream the events."""

    name: str
    color: str | None = None
    description: str | None = None


@plain_init
@dataclass(frozen=True)
class Calendar:
    info: CalendarInfo
    events: tuple[Event, ...] = ()


@plain_init
@dataclass(frozen=True)
class Attachment:
    filename: str
    media_type: str
    data: bytes


@plain_init
@dataclass(frozen=True)
class Note:
    id: str
    title: str
    body: str  # Markdown, kept byte for byte
    notebook: str | None = None  # may contain '/' for nesting
    tags: tuple[str, ...] = ()
    pinned: bool = False
    archived: bool = False
    attachments: tuple[Attachment, ...] = ()
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


@plain_init
@dataclass(frozen=True)
class Account:
    """A whole account in memory: used for import files, tests and small accounts.

    Exports of large accounts stream from the store instead of building this.
    """

    email: str
    display_name: str | None = None
    timezone: str = "UTC"
    contacts: tuple[Contact, ...] = ()
    calendars: tuple[Calendar, ...] = ()
    notes: tuple[Note, ...] = ()
