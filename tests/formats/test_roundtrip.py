"""Import → export → restore → export gives the same data, for generated hostile accounts.

Goes through every layer the product uses: records into the store, the store
streamed into a verified archive, the archive read back into the store, and a
second archive whose data files must be byte-identical to the first.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account.records import Account
from exporters.archive.check import check_archive
from exporters.archive.manifest import RESERVED_NAMES
from exporters.archive.reader import read_account
from jobs.export import export_user
from store import Database
from store.accounts import AccountReader, find_user, replace_account
from tests.profiles import examples
from tests.strategies.contacts import contacts
from tests.strategies.events import calendars
from tests.strategies.notes import notes

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


def _unique(items: list, key: str) -> tuple:
    seen: set[str] = set()
    out = []
    for item in items:
        value = getattr(item, key) if key != "name" else item.info.name
        if value not in seen:
            seen.add(value)
            out.append(item)
    return tuple(out)


accounts = st.builds(
    lambda cs, cals, ns: Account(
        email="gen@example.com",
        display_name="Generated",
        timezone="Europe/Berlin",
        contacts=_unique(cs, "uid"),
        calendars=tuple(type(c)(c.info, _unique(list(c.events), "uid")) for c in _unique(cals, "name")),
        notes=_unique(ns, "id"),
    ),
    st.lists(contacts(), max_size=4),
    st.lists(calendars(max_events=3), max_size=2),
    st.lists(notes(), max_size=4),
)


def _export(db: Database, email: str, out: Path) -> Path:
    with db.session() as session:
        user = find_user(session, email)
        assert user is not None
        result = export_user(session, user, out, now=NOW)
    return out / result.archive.relpath


def _data_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n not in RESERVED_NAMES}


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(account=accounts)
def test_generated_accounts_survive_the_whole_round_trip(db: Database, account: Account) -> None:
    with db.session(write=True) as session:
        replace_account(session, account)
    with tempfile.TemporaryDirectory() as tmp:
        first = _export(db, account.email, Path(tmp))
        check_archive(first)  # independent parsers accept every file
        restored = read_account(first, email="copy@example.com")
        assert restored.contacts == account.contacts
        assert restored.calendars == account.calendars
        assert restored.notes == account.notes
        with db.session(write=True) as session:
            replace_account(session, restored)
        with db.session() as session:
            user = find_user(session, "copy@example.com")
            assert user is not None
            assert AccountReader(session, user).account().notes == account.notes
        second = _export(db, "copy@example.com", Path(tmp))
        assert _data_files(first) == _data_files(second)
