"""SQLite and PostgreSQL accept, refuse and store exactly the same accounts.

Why a property test against both real databases: they differ in what `text`
and `VARCHAR(n)` take (PostgreSQL refuses U+0000 and enforces lengths and
B-tree entry sizes; SQLite takes anything), so only running the same hostile
input through both shows that the rules in `account.canonical` and
`account.storable` decide before either database does. Two doors lead into the
store: the JSON import (`parse_account`), and records from anywhere else, such
as an archive being restored (`replace_account` directly); both are covered.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account import canonical, storable
from account.jsonio import parse_account
from account.records import Account
from errors import InvalidInput
from jobs.restore import restore_archive
from store import Database
from store.accounts import AccountReader, find_user, replace_account
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.documents import documents
from tests.strategies.events import calendars
from tests.strategies.notes import notes
from tests.unit.test_import_rules import archive_with_raw_nul

pytestmark = pytest.mark.scale

BOTH = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _store(database: Database, account: Account) -> tuple[str, Any]:
    """What one database makes of `account`: what it reads back, or the problems it refused."""
    try:
        with database.session(write=True) as session:
            replace_account(session, account)
    except InvalidInput as exc:
        return "refused", exc.problems
    with database.session() as session:
        user = find_user(session, account.email)
        assert user is not None
        return "stored", AccountReader(session, user).account()


def _no_nul_anywhere(account: Account) -> None:
    assert not [path for path, _, value in storable.strings(account) if canonical.NUL in value]


@BOTH
@given(document=documents())
def test_an_import_file_is_accepted_or_refused_alike_and_stored_identically(
    db: Database, pg_db: Database, document: dict[str, Any]
) -> None:
    try:
        loaded = parse_account(document)
    except InvalidInput as exc:
        # Refused before either database is involved, with a path for every problem.
        assert exc.problems and all(path.startswith("$") for path, _ in exc.problems)
        return
    on_sqlite, on_postgresql = _store(db, loaded.account), _store(pg_db, loaded.account)
    assert on_sqlite == on_postgresql
    assert on_sqlite == ("stored", loaded.account)  # exactly what the import produced
    _no_nul_anywhere(on_sqlite[1])


def _with_nul(text: str) -> str:
    return text[: len(text) // 2] + "\x00" + text[len(text) // 2 :]


@st.composite
def records_with_nul(draw: st.DrawFn) -> Account:
    """Canonical accounts with U+0000 put back into some free text: what an old archive may hold."""
    contact = draw(st.lists(contacts(), max_size=2, unique_by=lambda c: c.uid))
    calendar = draw(st.lists(calendars(max_events=2), max_size=1))
    note = draw(st.lists(notes(), max_size=2, unique_by=lambda n: n.id))
    contact = [
        replace(c, note=_with_nul(c.note or "n"), formatted_name=_with_nul(c.formatted_name or "")) for c in contact
    ]
    calendar = [replace(c, info=replace(c.info, description=_with_nul(c.info.description or ""))) for c in calendar]
    note = [replace(n, body=_with_nul(n.body), title=_with_nul(n.title)) for n in note]
    return Account(
        email="restored@example.com",
        display_name=_with_nul(draw(st.text(max_size=5))),
        contacts=tuple(contact),
        calendars=tuple(calendar),
        notes=tuple(note),
    )


@BOTH
@given(account=records_with_nul())
def test_records_from_any_source_get_the_nul_rule_on_both_databases(
    db: Database, pg_db: Database, account: Account
) -> None:
    on_sqlite, on_postgresql = _store(db, account), _store(pg_db, account)
    assert on_sqlite == on_postgresql
    expected, replaced = storable.prepare(account)
    assert replaced  # every generated account has at least one NUL
    assert on_sqlite == ("stored", expected)
    _no_nul_anywhere(on_sqlite[1])


def test_restoring_an_old_archive_with_raw_nul_gives_the_same_notes_on_both_databases(
    db: Database, pg_db: Database, tmp_path: Path
) -> None:
    archive = archive_with_raw_nul(db, tmp_path)
    restored = [restore_archive(database, archive, "copy@example.com") for database in (db, pg_db)]
    assert restored[0] == restored[1]
    stored = [_store_view(database) for database in (db, pg_db)]
    assert stored[0] == stored[1]
    assert stored[0].notes[0].body == "old\ufffdbody\n"


def _store_view(database: Database) -> Account:
    with database.session() as session:
        user = find_user(session, "copy@example.com")
        assert user is not None
        return AccountReader(session, user).account()
