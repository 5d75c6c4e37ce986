"""Periodic clean-up: expired archives, leftovers of crashed writers, stuck runs; and missed-run alerts.

Why "never the newest": retention exists to save disk, but deleting a user's
only verified archive would recreate the Sidekick problem, so the newest
verified archive of every user is kept whatever its age.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exporters.archive.manifest import ArchiveError
from exporters.archive.reader import archive_owner
from jobs import missed_runs
from jobs import run_lifecycle as runs
from jobs.context import JobContext
from jobs.export_cache import remove_idle_caches
from jobs.scrub import scrub
from store import Archive, Database, User
from store.archive_files import (
    ArchiveFiles,
    ArchiveFilesError,
    as_archive_files,
    partial_in_use,
    remove_abandoned_partials,
)

log = logging.getLogger("lifeboat.housekeeping")
# Scrub checks per housekeeping pass (every 10 minutes): 2,880 a day, enough for a weekly look at
# 20,000 destinations, and few enough that one pass with a monthly full download of each stays short.
SCRUB_PER_PASS = 20


def expire_archives(database: Database, files: ArchiveFiles | Path, *, now: dt.datetime, keep_days: int) -> int:
    """Delete archives older than `keep_days`, except each user's newest verified one."""
    files = as_archive_files(files)
    cutoff = now - dt.timedelta(days=keep_days)
    newest = (
        select(Archive.user_id, func.max(Archive.created_at).label("newest"))
        .where(Archive.verified_at.is_not(None), Archive.deleted_at.is_(None))
        .group_by(Archive.user_id)
        .subquery()
    )
    # A writer from the start: it reads the old archives and then marks them deleted.
    with database.session(write=True) as session:
        old = list(
            session.scalars(
                select(Archive)
                .join(newest, newest.c.user_id == Archive.user_id)
                .where(
                    Archive.deleted_at.is_(None),
                    Archive.created_at < cutoff,
                    Archive.created_at < newest.c.newest,
                )
            )
        )
        for archive in old:
            files.delete(archive.relpath)
            # Both: "expired", not "deleted by you", is what it says from now on (`download_links.gone_words`).
            archive.deleted_at = archive.expires_at = now
    return len(old)


def remove_abandoned(files: ArchiveFiles | Path) -> int:
    """Remove the partial files whose writer is gone (killed outright), whatever their age.

    Why not only by age in `remove_leftovers`: an export killed with SIGKILL left
    its `.partial` file for hours (a user trial); its lock says at once that
    nobody writes it any more (`store.archive_files.partial_file`). Run at
    start-up, before each CLI export, and first in every housekeeping pass.
    """
    removed = remove_abandoned_partials(as_archive_files(files).scratch())
    if removed:
        log.info("removed %d partial file(s) left by writers that are gone", removed)
    return removed


def remove_leftovers(
    database: Database, files: ArchiveFiles | Path, *, now: dt.datetime, older_than: dt.timedelta
) -> int:
    """Remove partial files of crashed writers, and complete zips of this database's crashed runs.

    A partial file still locked by its writer stays, however old (a long export
    in another process); one whose writer is gone goes at once (`remove_abandoned`).

    Why a complete zip no archive row refers to is removed only when it is this
    database's: a run that dies between placing its file and committing its row
    leaves one, but so does nothing else of ours, while another database sharing
    the archive folder (an instance switched from SQLite to PostgreSQL and back,
    found by a user trial) has every one of its archives "unknown" here. So it is
    deleted only if its folder's user exists here and made it (its manifest's
    user is that user's address); any other stays, said once in the log.
    """
    files = as_archive_files(files)
    with database.session() as session:
        known = set(session.scalars(select(Archive.relpath)))
        removed = remove_abandoned(files)
        for relpath in files.stored_before(now - older_than):
            name = PurePosixPath(relpath)
            local = files.local_path(relpath)
            if name.name.startswith(".") and local is not None and partial_in_use(local):
                continue
            if name.name.startswith("."):
                files.delete(relpath)
                removed += 1
            elif name.suffix == ".zip" and relpath not in known:
                if _made_here(session, files, relpath):
                    files.delete(relpath)
                    removed += 1
                else:
                    log.warning(
                        "%s belongs to no archive of this database and was left alone "
                        "(is another database using the same archive folder?)",
                        relpath,
                    )
    return removed


def _made_here(session: Session, files: ArchiveFiles, relpath: str) -> bool:
    """Whether an unknown zip is a crashed run's of this database: its folder's user here made it."""
    folder = PurePosixPath(relpath).parent.name
    user = session.get(User, int(folder)) if folder.isdigit() else None
    if user is None:
        return False
    try:
        with files.open(relpath) as stream:
            owner = archive_owner(stream)
    except (ArchiveError, ArchiveFilesError, OSError, KeyError):
        return False  # not readable as one of our archives: nothing says it is ours
    return owner == user.email.lower()


def run_all(ctx: JobContext, *, now: dt.datetime, keep_days: int = 30) -> dict[str, int]:
    result = {
        "requeued": len(runs.requeue_expired(ctx.db, now=now)),
        "expired": expire_archives(ctx.db, ctx.files, now=now, keep_days=keep_days),
        "leftovers": remove_leftovers(ctx.db, ctx.files, now=now, older_than=ctx.lease * 3),
        # Longer than the longest schedule (monthly) and the archives' own retention.
        "idle_caches": remove_idle_caches(
            ctx.export_cache_dir, idle_for=dt.timedelta(days=max(45, keep_days)).total_seconds(), now=now.timestamp()
        ),
        # Every scheduler process runs this; each alert is claimed in the database and sent once.
        "missed_run_alerts": len(missed_runs.check(ctx, now=now)),
        # Delivered copies checked again (`jobs.scrub`), a bounded few each pass; the rest wait for the next.
        "scrubbed": len(scrub(ctx, now=now, limit=SCRUB_PER_PASS)),
    }
    if any(result.values()):
        log.info("housekeeping", extra=result)
    return result
