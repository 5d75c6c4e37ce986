"""Restore an archive into the store, streaming: memory stays flat however big the account is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from errors import InvalidInput
from exporters.archive.reader import open_records
from store.accounts import Counts
from store.db import Database
from store.replace import Owner, stage, write_staged


@dataclass(frozen=True)
class Restored:
    """What a restore wrote: whose data, which kinds, and how many of each."""

    email: str
    kinds: tuple[str, ...]
    counts: Counts


def restore_archive(database: Database, path: Path, email: str, *, scratch: Path | None = None) -> Restored:
    """Verify and read the archive, then replace `email`'s data with it in one transaction.

    Only the kinds of data the archive holds are replaced: one made with notes only
    leaves the contacts and calendars in the store as they are.

    Two steps, so nothing changes unless everything can: the archive is verified
    in full (every checksum), then read record by record, checked by the store's
    rules (`account.storable`) and staged as rows in a spool file in `scratch`;
    a damaged archive, a file that does not parse or a value no database could
    hold is refused there, before the store is touched. Only then does one write
    transaction delete the old rows and insert the staged ones in batches; if
    that fails half-way (two items sharing a UID, the database going away) it
    rolls back and the account is as it was.
    """
    try:
        with open_records(path, email=email, scratch=scratch) as records:
            owner = Owner(records.email, records.display_name, records.timezone)
            staged = stage(owner, records, records.kinds, scratch=scratch)
    except InvalidInput:
        raise
    except (ValueError, KeyError) as exc:
        raise InvalidInput(f"The archive cannot be read: {exc}") from exc
    with staged, database.session(write=True) as session:
        write_staged(session, staged)
    return Restored(email=staged.owner.email, kinds=staged.kinds, counts=staged.counts)
