"""`account.storable` knows every width the store declares, and applies the NUL rule to every string."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import String, Text

from account import storable
from account.records import (
    Account,
    Attachment,
    Attendee,
    Calendar,
    CalendarInfo,
    Contact,
    Event,
    Name,
    Note,
    Typed,
    When,
)
from errors import InvalidInput
from store import Base

# Each VARCHAR(n) column that holds account data, and the record field it stores.
COLUMNS = {
    ("users", "email"): "Account.email",
    ("users", "display_name"): "Account.display_name",
    ("users", "timezone"): "Account.timezone",
    ("calendars", "color"): "CalendarInfo.color",
    ("contacts", "birthday"): "Contact.birthday",
    ("contacts", "anniversary"): "Contact.anniversary",
    ("contacts", "photo_media_type"): "Blob.media_type",
    ("contact_extra", "name"): "Contact.extra.name",
    ("events", "start_tz"): "When.tz",
    ("events", "end_tz"): "When.tz",
    ("events", "status"): "Event.status",
    ("events", "transparency"): "Event.transparency",
    ("event_dates", "tz"): "When.tz",
    ("event_overrides", "recurrence_id_tz"): "When.tz",
    ("event_overrides", "start_tz"): "When.tz",
    ("event_overrides", "end_tz"): "When.tz",
    ("event_overrides", "status"): "Override.status",
    ("event_attendees", "role"): "Attendee.role",
    ("event_attendees", "partstat"): "Attendee.partstat",
    ("event_alarms", "trigger"): "Alarm.trigger",
    ("event_alarms", "action"): "Alarm.action",
    ("note_attachments", "media_type"): "Attachment.media_type",
}
ACCOUNT_TABLES = {"users", "contacts", "contact_values", "contact_addresses", "contact_categories", "contact_extra",
                  "calendars", "events", "event_dates", "event_overrides", "event_attendees", "event_alarms",
                  "event_categories", "notes", "note_tags", "note_attachments"}  # fmt: skip
# Written by Lifeboat itself, never from an account file or an archive.
INTERNAL = {
    ("users", "password_hash"),
    ("users", "vcard_version"),
    ("users", "role"),
    ("users", "export_kinds"),
    ("contact_values", "kind"),
    ("event_dates", "kind"),
    # Each item's content version (account.versions.record_digest), computed on the way in.
    ("contacts", "content_sha256"),
    ("events", "content_sha256"),
    ("notes", "content_sha256"),
}


def test_every_varchar_column_of_account_data_has_the_same_limit_in_the_contract() -> None:
    found = {
        (table.name, column.name): column.type.length
        for table in Base.metadata.sorted_tables
        if table.name in ACCOUNT_TABLES
        for column in table.columns
        if isinstance(column.type, String) and not isinstance(column.type, Text) and column.type.length
    }
    assert set(found) - INTERNAL == set(COLUMNS)
    assert {where: storable.CHAR_LIMITS[key] for where, key in COLUMNS.items()} == {
        where: length for where, length in found.items() if where not in INTERNAL
    }


def _account() -> Account:
    event = Event(
        uid="e\x00",
        start=When(datetime=dt.datetime(2009, 10, 5, 9), tz="Europe/Berlin"),
        attendees=(Attendee(email="a@example.com", name="A\x00"),),
    )
    return Account(
        email="alice@example.com",
        display_name="Alice\x00",
        contacts=(Contact(uid="c", name=Name(given="\x00"), emails=(Typed("x\x00"),), extra={"X-A": "v\x00"}),),
        calendars=(Calendar(CalendarInfo(name="Work\x00"), (event,)),),
        notes=(Note(id="n", title="t", body="\x00body", attachments=(Attachment("f\x00", "image/png", b"\x00"),)),),
    )


def test_prepare_replaces_every_nul_and_names_each_place_as_the_json_format_does() -> None:
    clean, replaced = storable.prepare(_account())
    assert replaced == [
        "$.display_name",
        "$.contacts[0].name.given",
        "$.contacts[0].emails[0].value",
        "$.contacts[0].extra.X-A",
        "$.calendars[0].name",
        "$.calendars[0].events[0].uid",
        "$.calendars[0].events[0].attendees[0].name",
        "$.notes[0].body",
        "$.notes[0].attachments[0].filename",
    ]
    assert not [path for path, _, value in storable.strings(clean) if "\x00" in value]
    assert clean.notes[0].body == "\ufffdbody"
    assert clean.notes[0].attachments[0].data == b"\x00"  # bytes are not text: kept


def test_prepare_leaves_an_account_without_nul_untouched() -> None:
    account, _ = storable.prepare(_account())
    again, replaced = storable.prepare(account)
    assert again is account and replaced == []


@pytest.mark.parametrize(
    ("account", "path"),
    [
        (Account(email="a@example.com", display_name="x" * 501), "$.display_name"),
        (
            Account(email="a@example.com", calendars=(Calendar(CalendarInfo("c", color="c" * 65)),)),
            "$.calendars[0].color",
        ),
        (Account(email="a@example.com", notes=(Note(id="日" * 334, title="", body=""),)), "$.notes[0].id"),
    ],
)
def test_prepare_refuses_what_one_database_would_refuse(account: Account, path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        storable.prepare(account)
    assert [where for where, _ in info.value.problems] == [path]
