"""One big export on both cores: the calendars in a second process, merged into the one archive.

Why: serialising is pure Python, so one export uses one core. At 1x HEAVY
(10,000 contacts, 50,000 events, 5,000 notes) the calendars are about half the
work (docs/performance.md, "issue 15: one export on both cores"), so a second
process makes them while this one writes the contacts and the notes.

How the archive stays the same bytes: its order is contacts, calendars, notes.
The second process (`jobs.export_calendars`, a plain `python -m` subprocess
through `exporters.archive.helper.Helper`, for the reasons given there: no fork
of a web process's threads and connections, no second import of the app) packs
each calendar's member, compressed exactly as the zip writer would, into a file
(`exporters.archive.packed`). Meanwhile this process writes the contacts into
the zip and packs the notes the same way into a file of its own, then copies
the calendars and the notes into the zip as they are (`writer.RawEntry`). Each
calendar's path comes from a `Bundle` of the same account in the second process,
whose path allocator starts as this one's; paths under `calendars/` never
meet the contacts' or notes', so they are the paths one process would give.

Both read the store, each in its own read transaction. They could see different
states of an account edited during the export; the second process's event and
calendar counts are compared with this one's, and a difference fails the
export (`ExportChanged`) rather than give an archive whose manifest disagrees
with its files. (Within one process on PostgreSQL, READ COMMITTED reads do not
share a snapshot either.)

A failed or killed second process fails the export with one line
(`CalendarsFailed`, "run the export again"; a scheduled run retries by itself);
the zip being written is discarded by `store_new` and the packed files are
removed. Entries this process already wrote to the item cache stay (the cache's
"drop what this export did not use" step is skipped, nothing else is undone):
each is checked before reuse, and the retry counts the cache as warm and runs
in one process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from sqlalchemy.orm import Session

from errors import LifeboatError
from exporters.archive.drill_written import WrittenCalendar
from exporters.archive.helper import Helper, HelperFailed
from exporters.archive.layout import Bundle
from exporters.archive.packed import PackedMember, pack_entries, raw_entries
from exporters.archive.writer import DeflatedEntry, Entry, RawEntry
from store.accounts import Counts

WORKER = "jobs.export_calendars"
# When two processes pay (bench/export_two_cores.py, docs/performance.md). The second process costs
# ~1.3 s of CPU before it makes anything: its interpreter and imports (~0.7 s when this was measured;
# ~0.5 s since they were cut to what it uses, most of it SQLAlchemy, the store's models and icalendar),
# SQLAlchemy's first mapper set-up and statement compiles (~0.4 s), its connection.
# Making the calendars takes ~0.1 ms of CPU per event; the rest of an export (contacts, notes, the
# read-back check) ~0.4 ms per contact or note (1x HEAVY: 11.1 s in one process; 6.4 s + 6.5 s in
# two). The longer of the two processes beats one process only when the rest outlasts that start-up,
# and clearly (~0.8x or better) when the calendars take at least the start-up and the rest at least
# twice it: below either, one process.
EVENTS_FROM = 13_000
OTHERS_FROM = 6_000  # contacts and notes


class SplitExportStopped(LifeboatError):
    """A passing condition of a split export that running it again clears; `what` says what happened.

    Its message, for the CLI, adds the fix; a scheduled run shows `what` alone, since it retries by itself.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}; run the export again")
        self.what = what


class ExportChanged(SplitExportStopped):
    """The account changed while its export read it; running the export again gives a consistent archive."""


class CalendarsFailed(SplitExportStopped):
    """The second process stopped before it made the calendars (killed, out of memory, an error there)."""


def processes_for(counts: Counts, kinds: tuple[str, ...], database_url: str | None, *, warm_cache: bool = False) -> int:
    """Two processes for an export with `EVENTS_FROM` events and `OTHERS_FROM` other items or more, on two cores.

    Not when the user's item cache holds entries (`warm_cache`): a repeat export takes most events from it,
    and at 1x HEAVY with nothing changed the longer process was 0.90x one process's CPU for 1.42x in all.
    """
    if warm_cache:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    others = (counts.contacts if "contacts" in kinds else 0) + (counts.notes if "notes" in kinds else 0)
    big = "calendars" in kinds and counts.events >= EVENTS_FROM and others >= OTHERS_FROM
    return 2 if cores >= 2 and big and database_url is not None else 1


def database_url(session: Session) -> str | None:
    """The URL a second process connects with to `session`'s database; None for a private in-memory one."""
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


class CalendarsElsewhere:
    """The second process, started now; `entries(bundle, counts)` is the whole archive's entries.

    Use as a context manager: leaving it kills the process if it still runs and
    removes its files.
    """

    def __init__(
        self,
        url: str,
        user_id: int,
        *,
        now: dt.datetime,
        timezone: str,
        cache_dir: Path | None,
        scratch: Path | None,
        drill: bool = False,
    ) -> None:
        """`drill`: the second process drills its calendars as it writes them (`exporters.archive.drill_written`);
        what it found goes to the bundle's `written` with its answer."""
        # Dot-files in the scratch folder, as the zip's own temporary file: housekeeping removes
        # what a crash leaves there (`ArchiveFiles.stored_before`). mkstemp makes them 0600.
        self._scratch = scratch
        self._files: list[str] = []
        request = self._new_file(".json")
        self._out = self._new_file(".packed")
        with open(request, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "database": url,
                    "user": user_id,
                    "now": now.isoformat(),
                    "timezone": timezone,
                    "cache": os.fspath(cache_dir) if cache_dir is not None else None,
                    "scratch": os.fspath(scratch) if scratch is not None else tempfile.gettempdir(),
                    "out": self._out,
                    "drill": drill,
                },
                handle,
            )
        try:
            self._helper = Helper(WORKER, [request])
        except BaseException:
            self._remove_files()
            raise

    def _new_file(self, suffix: str) -> str:
        handle, path = tempfile.mkstemp(prefix=".lifeboat-split-", suffix=suffix, dir=self._scratch)
        os.close(handle)
        self._files.append(path)
        return path

    def _remove_files(self) -> None:
        for path in self._files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def __enter__(self) -> CalendarsElsewhere:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._helper.close()
        finally:
            self._remove_files()

    def entries(self, bundle: Bundle, counts: Counts) -> Iterator[Entry | DeflatedEntry | RawEntry]:
        """`bundle.entries()`'s members in its order, the calendars made by the second process."""
        yield from bundle.contact_entries()
        with tempfile.TemporaryFile(prefix=".lifeboat-split-", dir=self._scratch) as notes_file:
            notes = list(pack_entries(bundle.note_entries(), notes_file))
            try:
                answer = self._helper.result()
            except HelperFailed as exc:
                raise CalendarsFailed(f"the calendars could not be exported: {exc}") from None
            calendars = [PackedMember.from_json(row) for row in answer["members"]]
            same_account(answer["events"], len(calendars), counts)
            bundle.reuse.hits["events"] += answer["hits"]
            bundle.reuse.misses["events"] += answer["misses"]
            if bundle.written is not None:
                for row in answer.get("drilled") or ():
                    bundle.written.done(WrittenCalendar.from_json(row))
            with open(self._out, "rb") as packed:
                yield from bundle.placed_calendars(raw_entries(calendars, packed))
            bundle.progress("calendars", answer["events"])
            yield from raw_entries(notes, notes_file)


def same_account(events: int, calendars: int, counts: Counts) -> None:
    """`ExportChanged` unless the second process read as many events and calendars as this one counted."""
    if (events, calendars) != (counts.events, counts.calendars):
        raise ExportChanged(
            f"the account changed during its export ({events} events in {calendars} calendars read, "
            f"{counts.events} in {counts.calendars} counted)"
        )
