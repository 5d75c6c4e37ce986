"""Restore an archive into the store, streaming: memory stays flat however big the account is."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from errors import InvalidInput, UserError
from exporters.archive.helper import Helper, HelperFailed
from exporters.archive.reader import open_records
from exporters.archive.signature import KeyRing, SignatureCheck
from exporters.archive.unkept import Unkept
from store.accounts import AccountReader, Counts, find_user
from store.db import Database
from store.replace import Owner, Staged, stage, write_staged

# Below this the second process costs more than it saves: its start-up takes ~0.67 s CPU (imports; it checks
# the file's digest instead of verifying again), near what the calendars of a 0.1x HEAVY archive (5.4 MB) cost
# here (~0.75 s): forced to two processes at 0.1x, 0.76 s here + 1.18 s in the worker vs ~1.5 s in one; 1x is 55 MB.
TWO_PROCESSES_FROM = 16 << 20
WORKER = "jobs.restore_worker"
log = logging.getLogger(__name__)


_UNCHECKED = SignatureCheck("unchecked")


@dataclass(frozen=True)
class Restored:
    """What a restore wrote: whose data, which kinds, and how many of each."""

    email: str
    kinds: tuple[str, ...]
    counts: Counts
    # What manifest.json.sig says, checked against the key set `restore_archive` was given.
    signature: SignatureCheck = _UNCHECKED
    # What the archive held that no record keeps (another program's front matter fields, X- properties).
    unkept: Unkept = field(default_factory=Unkept)


class HoldsData(UserError):
    """The account to restore into already holds data, and the restore was not told to replace it."""

    def __init__(self, email: str, counts: Counts) -> None:
        super().__init__(f"{email} already holds data; restoring would replace it")
        self.email = email
        self.counts = counts


def data_held(session: Session, email: str) -> Counts | None:
    """What `email`'s account holds, or None when there is no such account or it holds nothing."""
    user = find_user(session, email)
    if user is None:
        return None
    counts = AccountReader(session, user).counts()
    return counts if counts.contacts or counts.calendars or counts.notes else None


def restore_archive(
    database: Database,
    path: Path,
    email: str,
    *,
    scratch: Path | None = None,
    processes: int | None = None,
    keys: KeyRing | None = None,
    replace: bool = True,
) -> Restored:
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

    Archives of `TWO_PROCESSES_FROM` bytes or more on two or more cores (or
    `processes=2`) are staged by two processes: the calendars by a plain
    `jobs.restore_worker` (not a fork of a web process, not the app), contacts
    and notes here. The worker does not verify the archive again: it checks
    that the file has the SHA-256 this process took before verifying it, and
    its answer is used only if that verification passed. If either finds
    anything wrong, the staging is done
    again in one process, whose error is the one reported: the outcome is always
    the one-process outcome.

    With `replace=False` an account that already holds data is left alone:
    `HoldsData` is raised inside the write transaction, before anything is
    written (the CLI asks for `--replace`, as a typo in the address must not
    wipe someone else's data).
    """
    reading = _Reading(path, email, scratch, keys)
    staged = _staged_by_two(reading) if _two_processes(path, processes) else None
    if staged is None:
        reading.unkept.clear()
        staged = _staged_by_one(reading)
    with staged, database.session(write=True) as session:
        held = None if replace else data_held(session, email)
        if held is not None:
            raise HoldsData(email, held)
        write_staged(session, staged)
    said = functools.reduce(Unkept.merge, reading.unkept, Unkept())
    return Restored(staged.owner.email, staged.kinds, staged.counts, reading.signed[-1], said)


def _two_processes(path: Path, processes: int | None) -> bool:
    if processes is not None:
        return processes >= 2
    try:
        size = path.stat().st_size
    except OSError:
        return False  # the one-process restore says why
    return size >= TWO_PROCESSES_FROM and (os.cpu_count() or 1) >= 2


@dataclass
class _Reading:
    """The archive a restore reads and how; what each reading of it finds goes to `signed` and `unkept`."""

    path: Path
    email: str
    scratch: Path | None
    keys: KeyRing | None
    signed: list[SignatureCheck] = field(default_factory=list)  # what the verification in this process found
    unkept: list[Unkept] = field(default_factory=list)  # what the reading that is used met and no record keeps

    def staged(self, *, without: str | None = None) -> tuple[Staged, list[str]]:
        """The archive verified and its records staged (all kinds but `without`), and the kinds it holds."""
        with open_records(self.path, email=self.email, scratch=self.scratch, keys=self.keys) as records:
            self.signed.append(records.archive.signature)
            owner = Owner(records.email, records.display_name, records.timezone)
            kinds = [k for k in records.kinds if k != without]
            staged = stage(owner, records, kinds, scratch=self.scratch)
            self.unkept.append(records.unkept)
            return staged, list(records.kinds)


def _staged_by_one(reading: _Reading) -> Staged:
    try:
        return reading.staged()[0]
    except InvalidInput:
        raise
    except (ValueError, KeyError) as exc:
        raise InvalidInput(f"The archive cannot be read: {exc}") from exc


def _staged_by_two(reading: _Reading) -> Staged | None:
    """Contacts and notes staged here while the worker stages the calendars; None if either failed."""
    path, email, scratch = reading.path, reading.email, reading.scratch
    try:
        with path.open("rb") as f:
            # What the worker checks instead of verifying again: this file, which is verified below.
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None  # the one-process restore says why
    handle, name = tempfile.mkstemp(prefix=".lifeboat-restore-calendars-", dir=scratch)
    os.close(handle)
    spool = Path(name)
    try:
        with Helper(
            WORKER, [str(path), str(scratch or tempfile.gettempdir()), name, email, sha256, str(os.getpid())]
        ) as helper:
            try:
                staged, kinds = reading.staged(without="calendars")
            except (InvalidInput, ValueError, KeyError):
                return None  # the one-process restore reports it
            try:
                answer = helper.result()
            except HelperFailed:
                staged.close()
                raise
            if not isinstance(answer, dict) or "staged" not in answer:
                staged.close()
                return None
            if "calendars" in kinds:
                found = answer["staged"]
                try:
                    reading.unkept.append(Unkept.from_json(found.get("unkept") or {"counts": {}, "details": []}))
                except ValueError:
                    staged.close()
                    return None
                staged.add_calendars(spool.open("rb"), found["calendars"], found["events"], found["replaced"])
            return staged
    except HelperFailed as exc:
        log.warning("restore of %s: %s; staging it again in one process", path, exc)
        return None
    finally:
        spool.unlink(missing_ok=True)  # an open spool stays readable until it is closed
