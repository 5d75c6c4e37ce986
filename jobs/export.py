"""Export one user's data into a verified archive in the archive store.

This is the run's core, shared by the CLI, the embedded worker pool and Celery
tasks: read the store, lay out the bundle, write and verify the zip, record
the archive. It never delivers; `jobs.execute` does that afterwards. A big
first export makes its calendars in a second process (`jobs.export_split`).

Why reading and recording are two transactions: an export reads for as long
as the account is big (minutes for a large one), and on SQLite a transaction
that has read cannot start writing once anyone else committed meanwhile. So
the export reads in a read-only session and its `Archive` row is inserted
afterwards in a short write transaction (`export_and_record`, or the run's
own in `jobs.execute`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from exporters.archive.changes import ChangeLog
from exporters.archive.differences import readback_summary, where_lines
from exporters.archive.drill import Difference, DrillResult, drill
from exporters.archive.drill_memo import DrillMemo
from exporters.archive.drill_written import WrittenDrill
from exporters.archive.layout import Bundle, counts_of_kinds
from exporters.archive.manifest import ArchiveError, Manifest
from exporters.archive.paths import sanitize_component
from exporters.archive.reader import ArchiveReader, open_archive, verify_archive
from exporters.archive.reuse import ReuseStats
from exporters.archive.signature import SigningKey
from exporters.archive.writer import DeflatedEntry, Entry, RawEntry, write_archive
from exporters.ical.writer import stamp_line
from jobs.archive_options import VCARD_VERSIONS, kinds_of
from jobs.export_cache import ItemCacheFile
from jobs.export_split import CalendarsElsewhere, database_url, processes_for
from store import Archive, Database, ExportFidelity, User
from store.accounts import AccountReader, Counts
from store.archive_files import ArchiveFiles, as_archive_files, store_new
from store.runs import new_id

log = logging.getLogger("lifeboat.export")

__all__ = ["VCARD_VERSIONS", "export_and_record", "export_user", "write_verified"]

ProgressCallback = Callable[[str, int], None]  # (stage, percent)


@dataclass(frozen=True)
class ArchiveInfo:
    """A verified archive as stored: where, its SHA-256 and size, and the manifest read back from it."""

    relpath: str
    path: Path | None  # the stored file, for the local store; None in a bucket
    sha256: str  # of the whole zip file
    size: int
    manifest: Manifest
    drill: DrillResult | None = None  # the fidelity drill's result, when one ran


def write_verified(
    files: ArchiveFiles,
    name: str,
    entries: Iterable[Entry | DeflatedEntry | RawEntry],
    meta: Mapping[str, Any],
    now: dt.datetime,
    *,
    folder: str = "",
    layout: Callable[[], Mapping[str, Any]] | None = None,
    signer: SigningKey | None = None,
    changes: Callable[[], Mapping[str, Any]] | None = None,
    drill_with: Callable[[ArchiveReader], DrillResult] | None = None,
) -> ArchiveInfo:
    """Write an archive to a temporary file, read it back with the verifier, then store it as `folder/name`.

    The exporters write bytes and verify them; `store.archive_files.store_new`
    owns the temporary file, fsync and placement without overwriting. Raises
    `ArchiveError` for an unportable file name or bad entries, `ArchiveFilesError`
    if `relpath` exists or cannot be stored. With `signer` the archive is signed
    (`exporters.archive.signature`) and the read-back check demands that signature.
    With `drill_with`, the verified archive is then read back and compared with what
    went in (`exporters.archive.drill`), still before it is stored; its result is `drill`.
    """
    # 200 bytes leaves room for the `.<name>.partial-<pid>-<random>` temporary name (at most 234 of 255 bytes).
    if name.startswith(".") or sanitize_component(name, max_bytes=200) != name:
        raise ArchiveError(f"archive name {name!r} is not a plain, portable file name")
    relpath = f"{folder}/{name}" if folder else name
    scratch = files.scratch()
    keys = None if signer is None else signer.ring
    drilled: list[DrillResult] = []

    def check(temp: Path) -> Manifest:
        if drill_with is None:
            return verify_archive(temp, scratch=scratch, keys=keys, require_signature=signer is not None)
        with open_archive(temp, scratch=scratch, keys=keys) as archive:  # verified in full, as above
            if signer is not None and not archive.signature.valid:
                raise ArchiveError(f"no valid signature: {archive.signature.line()}")
            drilled.append(drill_with(archive))
            return archive.manifest

    stored = store_new(
        files,
        relpath,
        lambda out: write_archive(
            out, entries, meta, now, scratch=scratch, layout=layout, signer=signer, changes=changes
        ),
        check,
    )
    return ArchiveInfo(
        relpath=relpath,
        path=files.local_path(relpath),
        sha256=stored.sha256,
        size=stored.size,
        manifest=stored.verified,
        drill=drilled[0] if drilled else None,
    )


@dataclass(frozen=True)
class ExportResult:
    archive: Archive
    info: ArchiveInfo
    counts: Counts
    # Items whose bytes came from the per-user cache, and those serialised now.
    reuse: ReuseStats = field(default_factory=ReuseStats)
    # What the export had to change (the manifest's `changes`), and what the fidelity drill found.
    changes: ChangeLog = field(default_factory=ChangeLog)
    drill: DrillResult | None = None


def archive_filename(user: User, now: dt.datetime) -> str:
    """`lifeboat-<who>-<UTC timestamp>.zip`: readable, sortable, safe everywhere."""
    local = user.email.split("@", 1)[0]
    slug = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", slug).strip("-").lower()[:40] or f"user{user.id}"
    return f"lifeboat-{slug}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.zip"


def vcard_version_for(user: User, default: str, override: str | None = None) -> str:
    """The vCard version of `user`'s archive: a one-off override, else their own option, else the server's."""
    return override or user.vcard_version or default


def export_user(
    session: Session,
    user: User,
    where: ArchiveFiles | Path,
    *,
    now: dt.datetime,
    vcard_version: str = "3.0",
    progress: ProgressCallback | None = None,
    archive_id: str | None = None,
    kinds: tuple[str, ...] | None = None,
    cache_dir: Path | None = None,
    processes: int | None = None,
    signer: SigningKey | None = None,
    fidelity_drill: bool = True,
) -> ExportResult:
    """Write and verify a new archive of `user`'s data, reading through `session`.

    `kinds` (default: the user's archive options) are the kinds of data included;
    the counts of the others are 0 in the manifest and the `Archive` row.
    `cache_dir` (None: no cache) holds each user's item cache (`jobs.export_cache`):
    items unchanged since the last export are not read or serialised again, and
    the archive is the same bytes as without it. `processes` (default: by size,
    `jobs.export_split.processes_for`) is 2 to make the calendars in a second
    process, 1 for none; the archive is the same bytes either way. `signer`
    (the service's key, `JobContext.signing_key`) signs its manifest. With
    `fidelity_drill` (the default) the archive is read back with our own readers and
    compared with the store's records before it is stored (`exporters.archive.drill`);
    the result's `drill` says what it found, `changes` what the export had to change.

    The archive is stored as `<user id>/<archive id>.zip`, written under a
    temporary name and placed only after it was re-read and verified, so a
    crash leaves nothing that looks like an archive. The returned `Archive` row
    is not added to any session: the caller inserts it in a short write
    transaction after this read (see the module docstring), and removes the
    file if that fails.
    """
    files = as_archive_files(where)
    reader = AccountReader(session, user)
    kinds = kinds or kinds_of(user)
    counts = Counts(**counts_of_kinds(reader.counts().as_dict(), kinds))
    url = database_url(session)

    with contextlib.ExitStack() as stack:
        cache = stack.enter_context(ItemCacheFile(cache_dir, user.id)) if cache_dir is not None else None
        warm = cache is not None and cache.holds_entries()
        if processes is None:
            processes = processes_for(counts, kinds, url, warm_cache=warm)
        split = processes > 1 and url is not None and "calendars" in kinds
        # A first export's drill is done as the bundle writes (nothing is proven yet, so every item
        # would be read back): `exporters.archive.drill_written`. A repeat's reads back what changed.
        written = None
        if fidelity_drill and cache is not None and not warm:
            written = WrittenDrill(DrillMemo(cache), stamp_line(now), files.scratch())
        weights = _Weights(counts, split=split)

        def on_item(stage: str, done: int) -> None:
            if progress is not None:
                progress(weights.stage(stage, done), weights.percent(stage, done))

        bundle = Bundle(
            reader,
            now=now,
            timezone=user.timezone,
            vcard_version=vcard_version,
            progress=on_item,
            scratch=files.scratch(),
            kinds=kinds,
            cache=cache,
            written=written,
        )
        stack.callback(bundle.changes.close)  # its count and first few stay for the result
        entries: Iterable[Entry | DeflatedEntry | RawEntry] = bundle.entries()
        if split and url is not None:  # started once the cache is open: it joins this run's use of it
            elsewhere = stack.enter_context(
                CalendarsElsewhere(
                    url,
                    user.id,
                    now=now,
                    timezone=user.timezone,
                    cache_dir=cache_dir,
                    scratch=files.scratch(),
                    drill=written is not None,
                )
            )
            entries = elsewhere.entries(bundle, counts)

        def readback(archive: ArchiveReader) -> DrillResult:
            if progress is not None:
                progress(READBACK_STAGE, 96)  # its own stage: at 1x HEAVY it takes as long as the export's calendars
            return _drilled(archive, reader, kinds, cache, written)

        archive_id = archive_id or new_id()
        filename = archive_filename(user, now)
        meta = {
            "user": user.email,
            "display_name": user.display_name,
            "timezone": user.timezone,
            "counts": counts.as_dict(),
            "vcard_version": vcard_version,
            "kinds": list(kinds),
        }
        info = write_verified(
            files,
            f"{archive_id}.zip",
            entries,
            meta,
            now,
            folder=str(user.id),
            layout=lambda: bundle.layout.as_dict(),
            signer=signer,
            changes=bundle.changes.as_dict,
            drill_with=readback if fidelity_drill else None,
        )
        if cache is not None:
            cache.commit()  # the archive verified: keep what it used, drop the rest
    if progress is not None:
        progress("verified", 100)
    archive = Archive(
        id=archive_id,
        user_id=user.id,
        filename=filename,
        relpath=info.relpath,
        sha256=info.sha256,
        size=info.size,
        created_at=now,
        verified_at=now,
        **counts.as_dict(),
    )
    return ExportResult(
        archive=archive, info=info, counts=counts, reuse=bundle.reuse, changes=bundle.changes, drill=info.drill
    )


def export_and_record(
    database: Database,
    user_id: int,
    where: ArchiveFiles | Path,
    *,
    now: dt.datetime,
    default_vcard_version: str,
    vcard_version: str | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: Path | None = None,
    signer: SigningKey | None = None,
) -> ExportResult:
    """Export `user_id` (read-only transaction), then record the archive (short write transaction).

    For exports outside a run (`flask export`, the demo account). `vcard_version`
    overrides the user's own option once; without either the server default is used.
    """
    files = as_archive_files(where)
    with database.session() as session:
        user = session.get(User, user_id)
        if user is None:
            raise LookupError(f"no user {user_id}")
        version = vcard_version_for(user, default_vcard_version, vcard_version)
        result = export_user(
            session,
            user,
            files,
            now=now,
            vcard_version=version,
            progress=progress,
            cache_dir=cache_dir,
            signer=signer,
        )
    try:
        with database.session(write=True) as session:
            session.add(result.archive)
            fidelity = fidelity_row(result, now)
            if fidelity is not None:
                session.flush()  # the archive's row first: the result refers to it
                fidelity.archive_id = result.archive.id
                session.add(fidelity)
    except BaseException:
        # A complete zip that no archive row names must not look like an archive.
        files.delete(result.archive.relpath)
        raise
    return result


def _drilled(
    archive: ArchiveReader, reader: AccountReader, kinds: tuple[str, ...], cache: Any, written: WrittenDrill | None
) -> DrillResult:
    """The fidelity drill; if it fails itself (a bug of ours), a result that says so rather than a failed export.

    Why not fail the export: the archive verified, and it is still the best copy
    there is; the user is told the check did not complete, as a difference would
    be told. Only the error's kind is logged: its message may quote the user's data.
    """
    try:
        return drill(archive, reader, kinds=kinds, memo=cache, written=written)
    except Exception as exc:
        log.error("fidelity drill failed", extra={"error": type(exc).__name__})
        stopped = Difference("archive", "(read back)", "(drill)", "completed", "stopped by an internal error")
        return DrillResult(items=0, differences=1, described=[stopped])


READBACK_STAGE = "readback"  # the run's stage while the fidelity drill reads the archive back
# Lines of each kind kept with the run (the manifest lists every change; the drill counts every difference).
FIRST_LINES = 10


def fidelity_row(result: ExportResult, now: dt.datetime) -> ExportFidelity | None:
    """The store's row for what `result`'s drill found and its manifest's change count; None if no drill ran.

    The caller sets `run_id`/`archive_id` (`jobs.run_lifecycle.NewArchive`).
    """
    drilled = result.drill
    if drilled is None:
        return None
    described = drilled.described[:FIRST_LINES]
    detail = {
        "differences": [d.line() for d in described],
        "changes": [change.line() for change in result.changes.first(FIRST_LINES)],
        "described": [d.as_dict() for d in described],
    }
    return ExportFidelity(
        items=drilled.items,
        differences=drilled.differences,
        changes=len(result.changes),
        detail=json.dumps(detail, ensure_ascii=False),
        checked_at=now,
        method=drilled.method,
        skipped=drilled.skipped,
        difference_fields=where_lines(described) or None,
    )


def fidelity_line(result: ExportResult) -> str:
    """The run's history line: `Read back 65,002 items: 0 differences; 0 changes listed in manifest.json.`

    A repeat export's says how many items earlier drills proved (not parsed again):
    `Read back 65,002 items: 0 differences (64,990 proven by earlier drills); ...`.

    "" when no drill ran.
    """
    if result.drill is None:
        return ""
    return readback_line(result.drill, result.drill.skipped, len(result.changes))


def readback_line(drilled: DrillResult | ExportFidelity, skipped: int | None, changes: int) -> str:
    """`fidelity_line` of a drill's result, or of the row a run kept of it (`store.fidelity.ExportFidelity`)."""
    summary = readback_summary(drilled.items, drilled.differences)
    noun = "change" if changes == 1 else "changes"
    proven = f" ({skipped:,} proven by earlier drills)" if skipped else ""
    return f"{summary}{proven}; {changes:,} {noun} listed in manifest.json."


class _Weights:
    """Turn items done per stage into an overall percentage (export is 95%, verify the rest)."""

    def __init__(self, counts: Counts, *, split: bool = False) -> None:
        """`split`: the calendars are made in a second process and counted last (`jobs.export_split`)."""
        self.totals = {"contacts": counts.contacts, "calendars": counts.events, "notes": counts.notes}
        self.all = max(1, sum(self.totals.values()))
        order = ["contacts", "notes", "calendars"] if split else ["contacts", "calendars", "notes"]
        self.before = {stage: sum(self.totals[s] for s in order[: order.index(stage)]) for stage in order}

    def stage(self, stage: str, done: int) -> str:
        """`calendars:120/500`: the stage with items done of total, as the run's stage column keeps it."""
        if stage not in self.totals:
            return stage
        return f"{stage}:{min(done, self.totals[stage])}/{self.totals[stage]}"

    def percent(self, stage: str, done: int) -> int:
        if stage not in self.totals:
            return 95
        return min(95, int(95 * (self.before[stage] + min(done, self.totals[stage])) / self.all))


def split_stage(value: str | None) -> tuple[str | None, int | None, int | None]:
    """`calendars:120/500` -> ("calendars", 120, 500); a bare stage name has no counts.

    Why packed into one column: the run row already carries the stage to every
    reader (web, API, CLI) through the heartbeat, and items done of total are
    what a user watching a long export wants to see ("Calendars: 120 of 500 events").
    """
    if not value:
        return None, None, None
    name, _, counts = value.partition(":")
    done, _, total = counts.partition("/")
    if done.isdigit() and total.isdigit():
        return name, int(done), int(total)
    return name, None, None
