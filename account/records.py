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

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

FORMAT_VERSION = 1
# The kinds of data an account holds, in the order archives write them (a user may export some only).
KINDS = ("contacts", "calendars", "notes")
# The largest attachment, and note file (front matter and text), an account may hold: each is one file
# of the archive that reading it back holds in memory whole (`exporters.archive.reader.MAX_WHOLE_MEMBER`),
# so import refuses anything larger rather than make an archive that restore would refuse.
MAX_FILE_BYTES = 64 << 20
MAX_NOTE_TEXT_BYTES = MAX_FILE_BYTES - (1 << 20)  # leaves a MiB for the note's front matter


@dataclass(frozen=True)
class Typed:
    """An email, phone, URL or chat handle with its TYPE parameters."""

    value: str
    types: tuple[str, ...] = ()
    preferred: bool = False


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


@dataclass(frozen=True)
class Name:
    family: str | None = None
    given: str | None = None
    additional: str | None = None
    prefix: str | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class Blob:
    """Binary content with its media type (contact photo)."""

    media_type: str
    data: bytes


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


@dataclass(frozen=True)
class Person:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str | None = None
    role: str | None = None
    partstat: str | None = None


@dataclass(frozen=True)
class Alarm:
    trigger: str  # RFC 5545 duration, e.g. -PT15M
    action: str | None = None  # DISPLAY, EMAIL or AUDIO
    description: str | None = None


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


@dataclass(frozen=True)
class CalendarInfo:
    """A calendar without its events, so exporters can stream the events."""

    name: str
    color: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Calendar:
    info: CalendarInfo
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Attachment:
    filename: str
    media_type: str
    data: bytes


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
