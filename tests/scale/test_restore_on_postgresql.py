"""Restore on PostgreSQL: into an empty or an existing account, and all or nothing when it fails.

The same checks as tests/unit/test_restore.py (SQLite), on the database where a
failed statement aborts the whole transaction and `RETURNING` batches differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from account.records import Account
from store import Database
from tests.unit.test_restore import (
    check_a_failure_half_way_through_the_writes_changes_nothing,
    check_a_value_too_long_late_in_the_archive_changes_nothing,
    check_restore_into_an_empty_account,
    check_restore_replaces_an_existing_account,
)

pytestmark = pytest.mark.scale


def test_a_restore_into_an_empty_account_gives_back_every_record(
    pg_db: Database, alice: Account, tmp_path: Path
) -> None:
    check_restore_into_an_empty_account(pg_db, alice, tmp_path)


def test_a_restore_into_an_existing_account_replaces_all_of_its_data(
    pg_db: Database, alice: Account, tmp_path: Path
) -> None:
    check_restore_replaces_an_existing_account(pg_db, alice, tmp_path)


def test_a_failure_half_way_through_the_writes_leaves_the_account_as_it_was(
    pg_db: Database, alice: Account, tmp_path: Path
) -> None:
    check_a_failure_half_way_through_the_writes_changes_nothing(pg_db, alice, tmp_path)


def test_a_value_too_long_late_in_the_archive_is_refused_before_the_store_is_touched(
    pg_db: Database, alice: Account, tmp_path: Path
) -> None:
    check_a_value_too_long_late_in_the_archive_changes_nothing(pg_db, alice, tmp_path)
