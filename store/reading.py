"""Plain row tuples -> records, for the streaming `AccountReader` (the export's hot path).

Why this exists beside `store.mapping`: mapping converts ORM objects attribute by
attribute, which is the obvious way and stays the reference (tests/unit/test_reader_rows.py
proves both give equal records). The export reads 65,000 items at 1x HEAVY, and there
each attribute lookup on a row, each intermediate object and each value passed twice
through a type decorator showed in the profile: reading the store cost 3.4 s of CPU
where a plain scan of the same rows takes 0.4 s (8.3x; bench/export_account.py, "store
read alone vs plain scan"). So the reader selects exactly the columns named here, in
this order, and each builder unpacks a row as a tuple and builds the frozen records
directly: 1.8 s, 4.3x the scan, in the same benchmark.

Every `*_COLUMNS` tuple lists the columns a builder unpacks, in order; the parent's
`id` comes first, each child row starts with the parent's id. `WhenText` columns
arrive as their stored text (`store.base.parse_when` turns text and zone into one
`When` in a single step, instead of a `When` that `_with_tz` then copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from account.records import (
    Address,
    Alarm,
    Attachment,
    Attendee,
    Blob,
    Contact,
    Event,
    Name,
    Note,
    Override,
    Person,
    Typed,
    When,
)
from store.base import parse_when

Rows = Sequence[Sequence[Any]]

# --- contacts ---------------------------------------------------------------------------

CONTACT_COLUMNS = (
    "id",
    "uid",
    "formatted_name",
    "name_family",
    "name_given",
    "name_additional",
    "name_prefix",
    "name_suffix",
    "nickname",
    "organization",
    "department",
    "title",
    "role",
    "birthday",
    "anniversary",
    "note",
    "photo_media_type",
    "photo_data",
    "created",
    "updated",
)
# Child tables in the order `contact_record` takes them; each row: (contact_id, *columns).
CONTACT_CHILDREN = (
    ("contact_values", ("kind", "value", "types", "preferred")),
    (
        "contact_addresses",
        ("types", "preferred", "po_box", "extended", "street", "locality", "region", "postal_code", "country", "label"),
    ),
    ("contact_categories", ("value",)),
    ("contact_extra", ("name", "value")),
)


def contact_record(row: Sequence[Any], values: Rows, addresses: Rows, categories: Rows, extra: Rows) -> Contact:
    (
        _id,
        uid,
        formatted_name,
        family,
        given,
        additional,
        prefix,
        suffix,
        nickname,
        organization,
        department,
        title,
        role,
        birthday,
        anniversary,
        note,
        photo_media_type,
        photo_data,
        created,
        updated,
    ) = row
    typed: dict[str, list[Typed]] = {"email": [], "phone": [], "url": [], "impp": []}
    for _, kind, value, types, preferred in values:
        found = typed.get(kind)  # another kind has no field to go to (the ORM path drops it too)
        if found is not None:
            found.append(Typed(value=value, types=tuple(types.split()), preferred=preferred))
    named = family or given or additional or prefix or suffix
    return Contact(
        uid=uid,
        formatted_name=formatted_name,
        name=Name(family, given, additional, prefix, suffix) if named else None,
        nickname=nickname,
        organization=organization,
        department=department,
        title=title,
        role=role,
        emails=tuple(typed["email"]),
        phones=tuple(typed["phone"]),
        addresses=tuple(
            Address(tuple(types.split()), po_box, extended, street, locality, region, code, country, label, preferred)
            for _, types, preferred, po_box, extended, street, locality, region, code, country, label in addresses
        ),
        urls=tuple(typed["url"]),
        impps=tuple(typed["impp"]),
        birthday=birthday,
        anniversary=anniversary,
        categories=tuple(c[1] for c in categories),
        note=note,
        photo=Blob(photo_media_type, photo_data) if photo_media_type and photo_data is not None else None,
        extra={name: value for _, name, value in extra},
        created=created,
        updated=updated,
    )


# --- events -----------------------------------------------------------------------------

EVENT_COLUMNS = (
    "id",
    "uid",
    "summary",
    "description",
    "location",
    "start",
    "start_tz",
    "end",
    "end_tz",
    "rrule",
    "status",
    "transparency",
    "organizer_email",
    "organizer_name",
    "url",
    "created",
    "updated",
)
EVENT_CHILDREN = (
    ("event_dates", ("kind", "value", "tz")),
    (
        "event_overrides",
        (
            "recurrence_id",
            "recurrence_id_tz",
            "summary",
            "description",
            "location",
            "start",
            "start_tz",
            "end",
            "end_tz",
            "status",
        ),
    ),
    ("event_attendees", ("email", "name", "role", "partstat")),
    ("event_alarms", ("trigger", "action", "description")),
    ("event_categories", ("value",)),
)


def event_record(
    row: Sequence[Any], dates: Rows, overrides: Rows, attendees: Rows, alarms: Rows, categories: Rows
) -> Event:
    (
        _id,
        uid,
        summary,
        description,
        location,
        start_text,
        start_tz,
        end_text,
        end_tz,
        rrule,
        status,
        transparency,
        organizer_email,
        organizer_name,
        url,
        created,
        updated,
    ) = row
    start = parse_when(start_text, start_tz)
    rdates: list[When] = []
    exdates: list[When] = []
    for _, kind, value, tz in dates:
        (rdates if kind == "rdate" else exdates if kind == "exdate" else []).append(parse_when(value, tz))
    return Event(
        uid=uid,
        start=start,
        end=parse_when(end_text, end_tz) if end_text is not None else None,
        summary=summary,
        description=description,
        location=location,
        rrule=rrule,
        rdates=tuple(rdates),
        exdates=tuple(exdates),
        overrides=tuple(_override(o, start) for o in overrides) if overrides else (),
        status=status,
        transparency=transparency,
        organizer=Person(organizer_email, organizer_name) if organizer_email is not None else None,
        attendees=tuple(Attendee(email, name, role, partstat) for _, email, name, role, partstat in attendees)
        if attendees
        else (),
        alarms=tuple(Alarm(trigger, action, text) for _, trigger, action, text in alarms) if alarms else (),
        categories=tuple(c[1] for c in categories),
        url=url,
        created=created,
        updated=updated,
    )


def _override(row: Sequence[Any], start: When) -> Override:
    (_, recurrence_id, recurrence_id_tz, summary, description, location, o_start, start_tz, end, end_tz, status) = row
    return Override(
        # A stored override always has its RECURRENCE-ID; the event's start stands in as the ORM path does.
        recurrence_id=parse_when(recurrence_id, recurrence_id_tz) if recurrence_id is not None else start,
        summary=summary,
        description=description,
        location=location,
        start=parse_when(o_start, start_tz) if o_start is not None else None,
        end=parse_when(end, end_tz) if end is not None else None,
        status=status,
    )


# --- notes ------------------------------------------------------------------------------

NOTE_COLUMNS = ("id", "note_id", "title", "body", "notebook", "pinned", "archived", "created", "updated")
NOTE_CHILDREN = (
    ("note_tags", ("value",)),
    ("note_attachments", ("filename", "media_type", "data")),
)


def note_record(row: Sequence[Any], tags: Rows, attachments: Rows) -> Note:
    _id, note_id, title, body, notebook, pinned, archived, created, updated = row
    return Note(
        id=note_id,
        title=title,
        body=body,
        notebook=notebook,
        tags=tuple(t[1] for t in tags),
        pinned=pinned,
        archived=archived,
        attachments=tuple(Attachment(filename, media_type, data) for _, filename, media_type, data in attachments),
        created=created,
        updated=updated,
    )
