"""Check, and mend, the content versions the store keeps beside each contact, event and note.

Why this exists: a repeat export reuses the bytes an earlier export wrote for a
record of the same version, and the fidelity drill skips items proven against
it (issue 15, 16), without loading the record. Every way Lifeboat changes a row
(import, restore, sync, the API) writes its version (`store.mapping`); a row
edited by hand in SQL keeps its old one, and the next archives would then hold
the old bytes under the new file name while the drill says 0 differences (a user
trial showed it). `lifeboat check-versions` finds such rows and, with `--fix`,
writes their true versions; the caller then drops the user's export cache.

It loads every record, so it costs about what reading the store for a first
export does (1x HEAVY: seconds): an operator's tool, not part of each export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from account.versions import record_digest
from store.accounts import AccountReader
from store.calendars import EventRow
from store.contacts import ContactRow
from store.notes import NoteRow
from store.users import User

BATCH = 500
K = TypeVar("K")


@dataclass
class VersionCheck:
    """Rows whose stored version is not their record's: (kind, uid or id) of each, and how many were checked."""

    checked: int = 0
    stale: list[tuple[str, str]] = field(default_factory=list)


def check_versions(session: Session, user: User, *, fix: bool = False) -> VersionCheck:
    """Compare each of `user`'s rows' stored version with the digest of the record it holds; mend them with `fix`.

    A row without a version (written before versions were kept) is counted as
    stale too: it is never reused, and `fix` gives it one.
    """
    reader = AccountReader(session, user)
    found = VersionCheck()
    kinds: list[tuple[str, Any, Iterator[Any], Any]] = [
        ("contact", ContactRow, reader.contact_versions(), reader.contacts_by_key)
    ]
    for calendar_id, _ in reader.calendars():
        load = _bound(reader.events_by_key, calendar_id)
        kinds.append(("event", EventRow, reader.event_versions(calendar_id), load))
    kinds.append(("note", NoteRow, reader.note_versions(), reader.notes_by_key))
    for kind, row, versions, load in kinds:
        mended: list[dict[str, Any]] = []  # written once the kind's versions are read: no update under a cursor
        for batch in _batches(versions):
            records: Mapping[int, Any] = load([v.key for v in batch])
            for version in batch:
                record = records[version.key]
                found.checked += 1
                digest = record_digest(record)
                if digest != version.digest:
                    found.stale.append((kind, str(getattr(record, "uid", None) or getattr(record, "id", version.key))))
                    mended.append({"row_id": version.key, "digest": digest})
        if fix and mended:
            table = row.__table__  # Core, not the ORM's bulk update: one statement, many parameter sets
            statement = (
                update(table).where(table.c.id == bindparam("row_id")).values(content_sha256=bindparam("digest"))
            )
            session.execute(statement, mended)
    return found


def _bound(load: Any, calendar_id: int) -> Any:
    return lambda keys: load(calendar_id, keys)


def _batches(items: Iterable[K]) -> Iterator[list[K]]:
    iterator = iter(items)
    while batch := list(islice(iterator, BATCH)):
        yield batch
