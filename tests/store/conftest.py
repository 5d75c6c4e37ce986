"""Fixtures of the archive-store tests."""

from __future__ import annotations

from tests.store.archive_servers import moto_process, process_bucket

__all__ = ["moto_process", "process_bucket"]
