"""Convert between ORM rows and plain records, field by field.

Each row built here carries `content_sha256`, the digest of the record it was
built from (`account.versions`): the item's content version, which a repeat
export compares to reuse what it wrote before. Anything that changes a row's
content must go through these builders (or set the digest again).

Why by hand: each record field maps to a named column or child row, and the
round-trip tests prove nothing is dropped; a generic serializer would hide a
forgotten field inside a blob.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from account.records import (
    Address,
    Alarm,
    Attachment,
    Attendee,
    Blob,
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
from account.versions import record_digest
from store.calendars import (
    CalendarRow,
    EventAlarmRow,
    EventAttendeeRow,
    EventCategoryRow,
    EventDateRow,
    EventOverrideRow,
    EventRow,
)
from store.contacts import ContactAddressRow, ContactCategoryRow, ContactExtraRow, ContactRow, ContactValueRow
from store.notes import NoteAttachmentRow, NoteRow, NoteTagRow

_VALUE_KINDS = ("email", "phone", "url", "impp")
_NAME_PARTS = ("family", "given", "additional", "prefix", "suffix")
_ADDRESS_FIELDS = ("po_box", "extended", "street", "locality", "region", "postal_code", "country", "label")
_EVENT_TEXT = ("uid", "summary", "description", "location", "rrule", "status", "transparency", "url")


def _with_tz(value: When | None, tz: str | None) -> When | None:
    if value is None or tz is None:
        return value
    return When(date=value.date, datetime=value.datetime, tz=tz)


# --- contacts ---------------------------------------------------------------------------


def contact_row(contact: Contact, user_id: int, position: int) -> ContactRow:
    name = contact.name or Name()
    row = ContactRow(
        user_id=user_id,
        position=position,
        uid=contact.uid,
        formatted_name=contact.formatted_name,
        nickname=contact.nickname,
        organization=contact.organization,
        department=contact.department,
        title=contact.title,
        role=contact.role,
        birthday=contact.birthday,
        anniversary=contact.anniversary,
        note=contact.note,
        photo_media_type=contact.photo.media_type if contact.photo else None,
        photo_data=contact.photo.data if contact.photo else None,
        created=contact.created,
        updated=contact.updated,
        content_sha256=record_digest(contact),
        **{f"name_{part}": getattr(name, part) for part in _NAME_PARTS},
    )
    for kind, items in zip(_VALUE_KINDS, (contact.emails, contact.phones, contact.urls, contact.impps), strict=True):
        row.values.extend(
            ContactValueRow(kind=kind, position=i, value=t.value, types=" ".join(t.types), preferred=t.preferred)
            for i, t in enumerate(items)
        )
    row.addresses = [
        ContactAddressRow(
            position=i,
            types=" ".join(a.types),
            preferred=a.preferred,
            **{k: getattr(a, k) for k in _ADDRESS_FIELDS},
        )
        for i, a in enumerate(contact.addresses)
    ]
    row.categories = [ContactCategoryRow(position=i, value=v) for i, v in enumerate(contact.categories)]
    row.extra = [ContactExtraRow(position=i, name=k, value=v) for i, (k, v) in enumerate(contact.extra.items())]
    return row


def contact_record(row: ContactRow) -> Contact:
    def typed(kind: str) -> tuple[Typed, ...]:
        return tuple(
            Typed(value=v.value, types=tuple(v.types.split()), preferred=v.preferred)
            for v in row.values
            if v.kind == kind
        )

    parts = {part: getattr(row, f"name_{part}") for part in _NAME_PARTS}
    return Contact(
        uid=row.uid,
        formatted_name=row.formatted_name,
        name=Name(**parts) if any(parts.values()) else None,
        nickname=row.nickname,
        organization=row.organization,
        department=row.department,
        title=row.title,
        role=row.role,
        emails=typed("email"),
        phones=typed("phone"),
        addresses=tuple(
            Address(types=tuple(a.types.split()), preferred=a.preferred, **{k: getattr(a, k) for k in _ADDRESS_FIELDS})
            for a in row.addresses
        ),
        urls=typed("url"),
        impps=typed("impp"),
        birthday=row.birthday,
        anniversary=row.anniversary,
        categories=tuple(c.value for c in row.categories),
        note=row.note,
        photo=Blob(row.photo_media_type, row.photo_data)
        if row.photo_media_type and row.photo_data is not None
        else None,
        extra={e.name: e.value for e in row.extra},
        created=row.created,
        updated=row.updated,
    )


# --- calendars --------------------------------------------------------------------------


def calendar_row(info: CalendarInfo, user_id: int, position: int) -> CalendarRow:
    return CalendarRow(
        user_id=user_id, position=position, name=info.name, color=info.color, description=info.description
    )


def calendar_info(row: CalendarRow) -> CalendarInfo:
    return CalendarInfo(name=row.name, color=row.color, description=row.description)


def event_row(event: Event, calendar_id: int, position: int) -> EventRow:
    row = EventRow(
        calendar_id=calendar_id,
        position=position,
        start=event.start,
        start_tz=event.start.tz,
        end=event.end,
        end_tz=event.end.tz if event.end else None,
        organizer_email=event.organizer.email if event.organizer else None,
        organizer_name=event.organizer.name if event.organizer else None,
        created=event.created,
        updated=event.updated,
        content_sha256=record_digest(event),
        **{k: getattr(event, k) for k in _EVENT_TEXT},
    )
    row.dates = [
        EventDateRow(kind=kind, position=i, value=w, tz=w.tz)
        for kind, whens in (("rdate", event.rdates), ("exdate", event.exdates))
        for i, w in enumerate(whens)
    ]
    row.overrides = [
        EventOverrideRow(
            position=i,
            recurrence_id=o.recurrence_id,
            recurrence_id_tz=o.recurrence_id.tz,
            summary=o.summary,
            description=o.description,
            location=o.location,
            start=o.start,
            start_tz=o.start.tz if o.start else None,
            end=o.end,
            end_tz=o.end.tz if o.end else None,
            status=o.status,
        )
        for i, o in enumerate(event.overrides)
    ]
    row.attendees = [
        EventAttendeeRow(position=i, email=a.email, name=a.name, role=a.role, partstat=a.partstat)
        for i, a in enumerate(event.attendees)
    ]
    row.alarms = [
        EventAlarmRow(position=i, trigger=a.trigger, action=a.action, description=a.description)
        for i, a in enumerate(event.alarms)
    ]
    row.categories = [EventCategoryRow(position=i, value=v) for i, v in enumerate(event.categories)]
    return row


def event_record(row: EventRow) -> Event:
    def dates(kind: str) -> tuple[When, ...]:
        return tuple(w for d in row.dates if d.kind == kind and (w := _with_tz(d.value, d.tz)) is not None)

    start = _with_tz(row.start, row.start_tz)
    assert start is not None
    return Event(
        start=start,
        end=_with_tz(row.end, row.end_tz),
        rdates=dates("rdate"),
        exdates=dates("exdate"),
        overrides=tuple(
            Override(
                recurrence_id=_with_tz(o.recurrence_id, o.recurrence_id_tz) or start,
                summary=o.summary,
                description=o.description,
                location=o.location,
                start=_with_tz(o.start, o.start_tz),
                end=_with_tz(o.end, o.end_tz),
                status=o.status,
            )
            for o in row.overrides
        ),
        organizer=Person(row.organizer_email, row.organizer_name) if row.organizer_email is not None else None,
        attendees=tuple(Attendee(a.email, a.name, a.role, a.partstat) for a in row.attendees),
        alarms=tuple(Alarm(a.trigger, a.action, a.description) for a in row.alarms),
        categories=tuple(c.value for c in row.categories),
        created=row.created,
        updated=row.updated,
        **{k: getattr(row, k) for k in _EVENT_TEXT},
    )


# --- notes ------------------------------------------------------------------------------


def note_row(note: Note, user_id: int, position: int) -> NoteRow:
    row = NoteRow(
        user_id=user_id,
        position=position,
        note_id=note.id,
        title=note.title,
        body=note.body,
        notebook=note.notebook,
        pinned=note.pinned,
        archived=note.archived,
        created=note.created,
        updated=note.updated,
        content_sha256=record_digest(note),
    )
    row.tags = [NoteTagRow(position=i, value=v) for i, v in enumerate(note.tags)]
    row.attachments = [
        NoteAttachmentRow(position=i, filename=a.filename, media_type=a.media_type, data=a.data)
        for i, a in enumerate(note.attachments)
    ]
    return row


def note_record(row: NoteRow) -> Note:
    return Note(
        id=row.note_id,
        title=row.title,
        body=row.body,
        notebook=row.notebook,
        tags=tuple(t.value for t in row.tags),
        pinned=row.pinned,
        archived=row.archived,
        attachments=tuple(Attachment(a.filename, a.media_type, a.data) for a in row.attachments),
        created=row.created,
        updated=row.updated,
    )


# --- plain rows for bulk inserts --------------------------------------------------------
#
# Why siblings of the `*_row` functions: building ORM objects costs ~130 µs per event
# with its children (bench: 50,000 events, 6.4 s CPU), far more than the insert itself;
# `store.replace` inserts these dicts with `insert(table)` instead. They carry every
# column the `*_row` functions set except the keys (`id`, and the parent's id, which
# the writer fills in); tests/unit/test_bulk_rows.py proves both give the same columns,
# so a column added to a `*_row` function must be added here too.


class RowDicts(NamedTuple):
    """One parent row's columns and, by relationship name (`values`, `dates`...), its child rows."""

    row: dict[str, Any]
    children: dict[str, list[dict[str, Any]]]


def contact_dicts(contact: Contact, position: int) -> RowDicts:
    name = contact.name or Name()
    row = {
        "position": position,
        "uid": contact.uid,
        "formatted_name": contact.formatted_name,
        "nickname": contact.nickname,
        "organization": contact.organization,
        "department": contact.department,
        "title": contact.title,
        "role": contact.role,
        "birthday": contact.birthday,
        "anniversary": contact.anniversary,
        "note": contact.note,
        "photo_media_type": contact.photo.media_type if contact.photo else None,
        "photo_data": contact.photo.data if contact.photo else None,
        "created": contact.created,
        "updated": contact.updated,
        "content_sha256": record_digest(contact),
        **{f"name_{part}": getattr(name, part) for part in _NAME_PARTS},
    }
    values = [
        {"kind": kind, "position": i, "value": t.value, "types": " ".join(t.types), "preferred": t.preferred}
        for kind, items in zip(_VALUE_KINDS, (contact.emails, contact.phones, contact.urls, contact.impps), strict=True)
        for i, t in enumerate(items)
    ]
    addresses = [
        {
            "position": i,
            "types": " ".join(a.types),
            "preferred": a.preferred,
            **{k: getattr(a, k) for k in _ADDRESS_FIELDS},
        }
        for i, a in enumerate(contact.addresses)
    ]
    return RowDicts(
        row,
        {
            "values": values,
            "addresses": addresses,
            "categories": [{"position": i, "value": v} for i, v in enumerate(contact.categories)],
            "extra": [{"position": i, "name": k, "value": v} for i, (k, v) in enumerate(contact.extra.items())],
        },
    )


def calendar_dict(info: CalendarInfo, position: int) -> dict[str, Any]:
    return {"position": position, "name": info.name, "color": info.color, "description": info.description}


def event_dicts(event: Event, position: int) -> RowDicts:
    row = {
        "position": position,
        "start": event.start,
        "start_tz": event.start.tz,
        "end": event.end,
        "end_tz": event.end.tz if event.end else None,
        "organizer_email": event.organizer.email if event.organizer else None,
        "organizer_name": event.organizer.name if event.organizer else None,
        "created": event.created,
        "updated": event.updated,
        "content_sha256": record_digest(event),
        **{k: getattr(event, k) for k in _EVENT_TEXT},
    }
    return RowDicts(
        row,
        {
            "dates": [
                {"kind": kind, "position": i, "value": w, "tz": w.tz}
                for kind, whens in (("rdate", event.rdates), ("exdate", event.exdates))
                for i, w in enumerate(whens)
            ],
            "overrides": [
                {
                    "position": i,
                    "recurrence_id": o.recurrence_id,
                    "recurrence_id_tz": o.recurrence_id.tz,
                    "summary": o.summary,
                    "description": o.description,
                    "location": o.location,
                    "start": o.start,
                    "start_tz": o.start.tz if o.start else None,
                    "end": o.end,
                    "end_tz": o.end.tz if o.end else None,
                    "status": o.status,
                }
                for i, o in enumerate(event.overrides)
            ],
            "attendees": [
                {"position": i, "email": a.email, "name": a.name, "role": a.role, "partstat": a.partstat}
                for i, a in enumerate(event.attendees)
            ],
            "alarms": [
                {"position": i, "trigger": a.trigger, "action": a.action, "description": a.description}
                for i, a in enumerate(event.alarms)
            ],
            "categories": [{"position": i, "value": v} for i, v in enumerate(event.categories)],
        },
    )


def note_dicts(note: Note, position: int) -> RowDicts:
    row = {
        "position": position,
        "note_id": note.id,
        "title": note.title,
        "body": note.body,
        "notebook": note.notebook,
        "pinned": note.pinned,
        "archived": note.archived,
        "created": note.created,
        "updated": note.updated,
        "content_sha256": record_digest(note),
    }
    return RowDicts(
        row,
        {
            "tags": [{"position": i, "value": v} for i, v in enumerate(note.tags)],
            "attachments": [
                {"position": i, "filename": a.filename, "media_type": a.media_type, "data": a.data}
                for i, a in enumerate(note.attachments)
            ],
        },
    )
