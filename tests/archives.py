"""Write a verified archive into a folder in one call, as the archive tests and benches need.

Why here: the exporters only write bytes to a file object and verify them;
placing the file (temporary name, fsync, read back, link without overwriting)
is `store.archive_files`' job, driven by `jobs.export.write_verified`. Tests of
the archive's bytes want all of that in one step against a plain folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from account.records import Account, CalendarInfo, Contact, Event, Note
from exporters.archive.counts import account_counts
from exporters.archive.layout import Bundle
from exporters.archive.writer import DeflatedEntry, Entry
from exporters.ical.writer import zones_used
from jobs.export import ArchiveInfo, write_verified
from store.archive_files import LocalArchiveFiles


def write_archive(
    dest_dir: Path,
    name: str,
    entries: Iterable[Entry | DeflatedEntry],
    meta: Mapping[str, Any],
    now: dt.datetime,
    *,
    layout: Callable[[], Mapping[str, Any]] | None = None,
) -> ArchiveInfo:
    """Write, verify and place `dest_dir/name`; see `jobs.export.write_verified`."""
    return write_verified(LocalArchiveFiles(Path(dest_dir)), name, entries, meta, now, layout=layout)


def local_path(info: ArchiveInfo) -> Path:
    """The file `write_archive` placed (a folder store always has one; a bucket would not)."""
    assert info.path is not None
    return info.path


class MemorySource:
    """The bundle's source for an account in memory (what `store.accounts.AccountReader` is for the store)."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def contacts(self) -> Iterable[Contact]:
        return self.account.contacts

    def calendars(self) -> Sequence[tuple[int, CalendarInfo]]:
        return [(i, c.info) for i, c in enumerate(self.account.calendars)]

    def events(self, calendar_key: int) -> Iterable[Event]:
        return self.account.calendars[calendar_key].events

    def zones(self, calendar_key: int) -> Sequence[str]:
        return sorted(set().union(*(zones_used(e) for e in self.account.calendars[calendar_key].events)))

    def notes(self) -> Iterable[Note]:
        return self.account.notes


def archive_of(account: Account, dest_dir: Path, name: str, now: dt.datetime) -> Path:
    """An archive of `account` as `jobs.export` writes it, without the store: it may hold what no store would."""
    bundle = Bundle(MemorySource(account), now=now, timezone=account.timezone)
    meta = {
        "user": account.email,
        "display_name": account.display_name,
        "timezone": account.timezone,
        "counts": account_counts(account),
        "vcard_version": "3.0",
    }
    return local_path(
        write_archive(dest_dir, name, bundle.entries(), meta, now, layout=lambda: bundle.layout.as_dict())
    )
