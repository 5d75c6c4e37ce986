"""Delete one of a user's archives: the row marked deleted, its links revoked, its file removed.

Why here and not in a view: the archives page, the JSON API, the CLI and
support all delete the same way, and only `jobs` may touch both the rows and
the archive store (a folder, or the operator's bucket) in one operation.

Why the row first and the file after: once the short write commits, every
signed link answers 410 and no page offers the archive, so a file removal
that fails (a bucket that did not answer) leaves only an unreachable file.
Asked again, `remove_archive` removes the file again: deleting is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from jobs.download_links import revoke_archive_links
from store import Archive, Database
from store.archive_files import ArchiveFiles, ArchiveFilesError

log = logging.getLogger("lifeboat.archives")


@dataclass(frozen=True)
class Removal:
    """What deleting did: `already` when the archive had been deleted before; links revoked now."""

    archive_id: str
    filename: str
    already: bool
    links_revoked: int


def remove_archive(
    db: Database, files: ArchiveFiles, archive_id: str, user_id: int, *, now: dt.datetime
) -> Removal | None:
    """Delete the user's archive `archive_id`; None if they have no such archive (someone else's included).

    Safe to call twice: the second call changes no row and removes the file
    again should the first have left it behind.
    """
    with db.session(write=True) as session:
        archive = session.get(Archive, archive_id)
        if archive is None or archive.user_id != user_id:
            return None
        already = archive.deleted_at is not None
        if not already:
            archive.deleted_at = now
        revoked = revoke_archive_links(session, archive_id, user_id, now=now)
        relpath, filename = archive.relpath, archive.filename
    try:
        files.delete(relpath)
    except (ArchiveFilesError, OSError):
        # The row says deleted, so nothing serves the file; deleting again removes it.
        log.warning("archive file not removed", extra={"archive_id": archive_id}, exc_info=True)
    if not already:
        log.info("archive deleted", extra={"archive_id": archive_id, "links_revoked": revoked})
    return Removal(archive_id=archive_id, filename=filename, already=already, links_revoked=revoked)
