"""The store holds every field of an account without loss, and replaces data atomically."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from account.records import Account
from account.sample import SampleSize, generate_account
from errors import InvalidInput
from store import ContactRow, Database, User
from store.accounts import AccountReader, find_user, replace_account


def test_it_gives_back_alice_exactly(db: Database, alice: Account) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    with db.session() as session:
        user = find_user(session, "ALICE@example.com")
        assert user is not None
        assert AccountReader(session, user).account() == alice


def test_it_replaces_all_data_on_a_second_import(db: Database, alice: Account) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    smaller = replace(alice, contacts=alice.contacts[:1], notes=())
    with db.session(write=True) as session:
        replace_account(session, smaller)
    with db.session() as session:
        user = find_user(session, alice.email)
        assert user is not None
        assert AccountReader(session, user).account() == smaller
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_a_failed_import_changes_nothing(db: Database, alice: Account) -> None:
    with db.session(write=True) as session:
        replace_account(session, alice)
    duplicate = replace(alice, contacts=alice.contacts + alice.contacts[:1])  # violates unique (user, uid)
    with pytest.raises(InvalidInput, match="two contacts have the same UID"), db.session(write=True) as session:
        replace_account(session, duplicate)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ContactRow)) == len(alice.contacts)


def test_it_counts_and_lists_zones_per_calendar(db: Database, alice: Account) -> None:
    with db.session(write=True) as session:
        user = replace_account(session, alice)
        reader = AccountReader(session, user)
        counts = reader.counts()
        assert (counts.contacts, counts.calendars, counts.events, counts.notes, counts.attachments) == (3, 2, 4, 3, 1)
        (personal_id, _), (work_id, _) = reader.calendars()
        assert reader.zones(personal_id) == ["Europe/Berlin"]
        assert reader.zones(work_id) == []


def test_it_streams_a_generated_account_in_order(db: Database) -> None:
    account = generate_account("gen@example.com", SampleSize(contacts=600, events=600, notes=60), seed=7)
    with db.session(write=True) as session:
        user = replace_account(session, account)
    with db.session() as session:
        reader = AccountReader(session, user)
        assert tuple(reader.contacts()) == account.contacts
        assert [n.id for n in reader.notes()] == [n.id for n in account.notes]
        assert reader.account() == account
