"""On PostgreSQL too, the streaming reader gives exactly the records the ORM path gives.

The reader passes each batch's ids as one parameter, written differently per
database (`= ANY(array)` here, a JSON array on SQLite), so both need the proof;
this account spans several batches of contacts and events.
"""

from __future__ import annotations

import pytest

from account.sample import SampleSize, generate_account
from store import Database
from tests.unit.test_reader_rows import both_ways

pytestmark = pytest.mark.scale


def test_a_generated_account_over_several_batches_reads_the_same_both_ways_on_postgresql(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("store.accounts.BATCH", 7)  # many batches, and a short last one
    account = generate_account("gen@example.com", SampleSize(contacts=40, events=60, notes=30), seed=11)
    fast, orm = both_ways(pg_db, account)
    assert fast == orm == account
