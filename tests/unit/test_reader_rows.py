"""The streaming reader (plain row tuples, `store.reading`) gives exactly the records the ORM path gives.

Why against ORM objects: `store.mapping.*_record` reads the ORM objects attribute by
attribute, the obvious conversion the reader used before it was made fast (issue 15).
Both must agree on every account, including child rows that straddle a batch.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from account import storable
from account.records import Account, Calendar, Event
from account.sample import SampleSize, generate_account
from store import Database, mapping
from store.accounts import AccountReader, find_user, replace_account
from store.calendars import CalendarRow, EventRow
from store.contacts import ContactRow
from store.notes import NoteRow
from store.users import User
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendars
from tests.strategies.notes import notes


def orm_account(session: Session, user: User) -> Account:
    """The account as ORM objects with their relationships, through `store.mapping`."""
    people = session.scalars(
        select(ContactRow)
        .where(ContactRow.user_id == user.id)
        .order_by(ContactRow.position)
        .options(*(selectinload(r) for r in (ContactRow.values, ContactRow.addresses, ContactRow.categories)))
        .options(selectinload(ContactRow.extra))
    ).all()
    shelves = session.scalars(
        select(CalendarRow).where(CalendarRow.user_id == user.id).order_by(CalendarRow.position)
    ).all()
    event_children = (EventRow.dates, EventRow.overrides, EventRow.attendees, EventRow.alarms, EventRow.categories)

    def events(calendar: CalendarRow) -> tuple[Event, ...]:
        rows = session.scalars(
            select(EventRow)
            .where(EventRow.calendar_id == calendar.id)
            .order_by(EventRow.position)
            .options(*(selectinload(r) for r in event_children))
        ).all()
        return tuple(mapping.event_record(row) for row in rows)

    pages = session.scalars(
        select(NoteRow)
        .where(NoteRow.user_id == user.id)
        .order_by(NoteRow.position)
        .options(selectinload(NoteRow.tags), selectinload(NoteRow.attachments))
    ).all()
    return Account(
        email=user.email,
        display_name=user.display_name,
        timezone=user.timezone,
        contacts=tuple(mapping.contact_record(row) for row in people),
        calendars=tuple(Calendar(mapping.calendar_info(c), events(c)) for c in shelves),
        notes=tuple(mapping.note_record(row) for row in pages),
    )


def both_ways(db: Database, account: Account) -> tuple[Account, Account]:
    """Store `account`, then read it back (fast reader, ORM path)."""
    with db.session(write=True) as session:
        replace_account(session, account)
    with db.session() as session:
        user = find_user(session, account.email)
        assert user is not None
        return AccountReader(session, user).account(), orm_account(session, user)


def test_alice_reads_the_same_through_rows_and_through_orm_objects(db: Database, alice: Account) -> None:
    fast, orm = both_ways(db, alice)
    assert fast == orm == alice


@pytest.mark.parametrize("batch", [1, 2, 500])
def test_child_rows_reach_their_parent_whatever_the_batch_size(
    db: Database, alice: Account, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("store.accounts.BATCH", batch)
    fast, orm = both_ways(db, alice)
    assert fast == orm == alice


def test_a_generated_account_over_several_batches_reads_the_same_both_ways(db: Database) -> None:
    # 1,100 contacts: three batches of 500; 1,200 events over the sample calendars.
    account = generate_account("gen@example.com", SampleSize(contacts=1100, events=1200, notes=60), seed=11)
    fast, orm = both_ways(db, account)
    assert fast == orm == account


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    return Account(
        email="hypo@example.com",
        display_name=draw(st.none() | st.text(min_size=1, max_size=5)),
        contacts=tuple(draw(st.lists(contacts(), max_size=3, unique_by=lambda c: c.uid))),
        calendars=tuple(draw(st.lists(calendars(max_events=3), max_size=2, unique_by=lambda c: c.info.name))),
        notes=tuple(draw(st.lists(notes(), max_size=3, unique_by=lambda n: n.id))),
    )


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(account=accounts())
def test_any_account_reads_the_same_through_rows_and_through_orm_objects(db: Database, account: Account) -> None:
    fast, orm = both_ways(db, account)
    assert fast == orm
    expected, _ = storable.prepare(account)
    assert fast == expected


def test_the_reader_sees_changes_its_session_has_not_flushed_yet(db: Database, alice: Account) -> None:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        first = session.scalars(
            select(ContactRow).where(ContactRow.user_id == user.id).order_by(ContactRow.position)
        ).first()
        assert first is not None
        first.nickname = "Not flushed yet"
        assert next(AccountReader(session, user).contacts()).nickname == "Not flushed yet"
