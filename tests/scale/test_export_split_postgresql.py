"""A big export's second process on PostgreSQL: it connects with its own URL, and the archive
is the same bytes as one process writes (the SQLite checks are tests/formats/test_export_split.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from account.sample import SampleSize, generate_account
from store import Database
from tests.formats.test_export_split import check_two_processes_give_the_same_archive

pytestmark = pytest.mark.scale


def test_a_generated_account_exported_in_two_processes_on_postgresql_is_the_same_archive(
    pg_db: Database, tmp_path: Path
) -> None:
    size = SampleSize(contacts=40, events=300, notes=30, attachment_ratio=0.1, calendars=2)
    check_two_processes_give_the_same_archive(pg_db, generate_account("big@example.com", size, seed=8), tmp_path)
