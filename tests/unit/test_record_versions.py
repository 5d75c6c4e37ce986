"""Content versions: equal records share a digest, any change of content gives another, and the store keeps them."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from account.records import Account, Blob, Contact, Name, Note
from account.versions import record_digest
from store import ContactRow, Database, NoteRow
from store.accounts import replace_account
from tests.strategies.contacts import contacts


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
