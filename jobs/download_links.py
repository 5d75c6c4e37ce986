"""Download links a user hands to curl, wget or a download manager, and what they open.

Why rows (`store.DownloadLink`) and not only signed strings: a link in an email
or a script may leak; revoking its row stops it at once, however long its
signature would still be valid, and the user can list what is out there. The
signed token (an HTTP concern: `web.links`) names only the row's id.

Why the part list and the per-member streams live here: the web pages and the
JSON API (`web.api`) offer the same things, so both call these functions; the
member bytes are read straight from the stored zip one piece at a time
(`exporters.archive.zipdir`), so memory stays flat whatever the archive holds.

The function API (for `web.archives` and `web.api`):

- `create_link(session, archive_id, user_id, max_age=, now=)` -> `DownloadLink` row
- `revoke_link(session, link_id, user_id, now=)` -> bool; `revoke_archive_links(...)` -> int
- `active_links(session, archive_id, user_id, now=)` -> list of rows
- `open_link(session, link_id, now=)` -> the `Archive` it opens, or `LinkRefused` (404 / 410)
- `count_download(session, link_id)`
- `link_lifetime(max_age_seconds, days=None)` -> how long a new link lives (bounded by the setting)
- `links_for(session, archive_ids, user_id, now=)` -> active links of many archives at once
- `needs_download_link(backends)` -> whether a run's deliveries may use a link (email only)
- `archive_manifest(files, archive, changes_from=)` -> the archive's whole `Manifest` (meta and file list)
- `archive_parts(files, archive)` -> the manifest's `ManifestFile`s (name, size, SHA-256)
- `checksums_lines(archive, parts)` -> `SHA256SUMS` text for the archive file and every part
- `member_chunks(files, archive, name, start=, length=)` -> one member's bytes, or `KeyError`
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import IO, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from delivery.contract import Delivery
from errors import InvalidInput, LifeboatError
from exporters.archive.counts import KIND_COUNTS, KINDS
from exporters.archive.manifest import (
    CHECKSUMS_NAME,
    MANIFEST_NAME,
    Manifest,
    ManifestFile,
    read_changes_section,
    read_manifest,
)
from exporters.archive.zipdir import Member, central_directory
from exporters.archive.zipdir import member_chunks as zip_member_chunks
from store import Archive, DownloadLink
from store.archive_files import ArchiveFiles, ArchiveFilesError, local_copy


def gone_words(archive: Archive, *, keep_days: int | None = None) -> str:
    """Why `archive` can no longer be had, as truly as the rows tell: expired, deleted by its owner, or deleted.

    Why not one sentence for all: "expired" for an archive its owner deleted
    the day it was made (user trial 7) blames the retention rule for the
    user's own act. Retention marks what it deletes (`expires_at` set to the
    moment of deletion, `jobs.housekeeping.expire_archives`); an archive
    deleted younger than `keep_days` cannot have been retention's, so its owner
    deleted it (from the archives page or the API: only they can). Older
    deletions from before retention marked its own say only "deleted".
    """
    again = "Export again to get a fresh one."
    deleted = archive.deleted_at
    if deleted is None:
        return f"This archive is no longer stored. {again}"
    day = deleted.strftime("%Y-%m-%d")
    if archive.expires_at is not None and archive.expires_at == deleted:
        kept = f": archives are kept {keep_days} days (the newest verified one always)" if keep_days else ""
        return f"This archive expired and was deleted on {day}{kept}. {again}"
    if keep_days is not None and deleted - archive.created_at < dt.timedelta(days=keep_days):
        return f"You deleted this archive on {day}. {again}"
    return f"This archive was deleted on {day}. {again}"


# Files a part list leaves out: manifest.json cannot list its own hash, and SHA256SUMS is served apart.
_NOT_PARTS = frozenset({CHECKSUMS_NAME, MANIFEST_NAME})


class LinkRefused(LifeboatError):
    """A link that opens nothing: `status` is 404 (no such link or archive) or 410 (expired, revoked, deleted)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def link_lifetime(max_age_seconds: int, days: int | None = None) -> dt.timedelta:
    """How long a new link lives: `days`, or the longest allowed (DOWNLOAD_LINK_MAX_AGE) when None.

    Why bounded by the setting: the signature inside the link stops at that age
    whatever its row says, so a longer row would promise a link that no longer
    opens. A request for more is refused in words rather than silently cut.
    """
    longest = dt.timedelta(seconds=max_age_seconds)
    if days is None:
        return longest
    allowed = longest.days
    if not 1 <= days <= allowed:  # ints: a huge `days` must not reach timedelta (OverflowError, a 500)
        limit = f"between 1 and {allowed}" if allowed >= 1 else "left out (links here last under a day)"
        raise InvalidInput(
            f"expires_in_days must be {limit}: the server's limit is LIFEBOAT_DOWNLOAD_LINK_MAX_AGE",
            problems=[("expires_in_days", f"Must be {limit}.")],
        )
    return dt.timedelta(days=days)


def needs_download_link(backends: Iterable[Delivery]) -> bool:
    """Whether any of a run's deliveries may put a download link in front of the user.

    Only email does (an archive too large to attach, for the message or the
    server, goes as a link; which of the two is known only while sending), so
    a run with no email destination makes no link row nobody would ever use.
    """
    return any(backend.kind == "email" for backend in backends)


def create_link(
    session: Session, archive_id: str, user_id: int, *, max_age: dt.timedelta, now: dt.datetime
) -> DownloadLink:
    """A new link to the user's own, still stored archive, valid for `max_age` from `now`.

    Someone else's archive answers like a missing one (`LinkRefused(404)`), so a
    caller cannot learn which archive ids exist.
    """
    archive = session.get(Archive, archive_id)
    if archive is None or archive.user_id != user_id:
        raise LinkRefused(404, "No such archive.")
    if archive.deleted_at is not None:
        raise LinkRefused(410, gone_words(archive))
    link = DownloadLink(archive_id=archive_id, user_id=user_id, created_at=now, expires_at=now + max_age, downloads=0)
    session.add(link)
    session.flush()  # the id, for the token
    return link


def revoke_link(session: Session, link_id: str, user_id: int, *, now: dt.datetime) -> bool:
    """Revoke one of the user's links at once; False if it is not theirs or does not exist."""
    link = session.get(DownloadLink, link_id)
    if link is None or link.user_id != user_id:
        return False
    if link.revoked_at is None:
        link.revoked_at = now
    return True


def revoke_archive_links(session: Session, archive_id: str, user_id: int, *, now: dt.datetime) -> int:
    """Revoke every live link to one archive of the user's (e.g. when it is deleted); how many."""
    result = session.execute(
        update(DownloadLink)
        .where(
            DownloadLink.archive_id == archive_id,
            DownloadLink.user_id == user_id,
            DownloadLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def revoke_user_links(session: Session, user_id: int, *, now: dt.datetime) -> int:
    """Revoke every live link of the user's, to any archive (support, after a leak); how many."""
    result = session.execute(
        update(DownloadLink)
        .where(DownloadLink.user_id == user_id, DownloadLink.revoked_at.is_(None), DownloadLink.expires_at > now)
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def active_links(session: Session, archive_id: str, user_id: int, *, now: dt.datetime) -> list[DownloadLink]:
    """The user's links to the archive that still open it, newest first."""
    return list(
        session.scalars(
            select(DownloadLink)
            .where(
                DownloadLink.archive_id == archive_id,
                DownloadLink.user_id == user_id,
                DownloadLink.revoked_at.is_(None),
                DownloadLink.expires_at > now,
            )
            .order_by(DownloadLink.created_at.desc())
        )
    )


def links_for(
    session: Session, archive_ids: Iterable[str], user_id: int, *, now: dt.datetime
) -> dict[str, list[DownloadLink]]:
    """`active_links` for a page of archives in one query: archive id -> its live links, newest first."""
    found: dict[str, list[DownloadLink]] = defaultdict(list)
    ids = list(archive_ids)
    if not ids:
        return found
    rows = session.scalars(
        select(DownloadLink)
        .where(
            DownloadLink.archive_id.in_(ids),
            DownloadLink.user_id == user_id,
            DownloadLink.revoked_at.is_(None),
            DownloadLink.expires_at > now,
        )
        .order_by(DownloadLink.created_at.desc())
    )
    for link in rows:
        found[link.archive_id].append(link)
    return found


def open_link(session: Session, link_id: str, *, now: dt.datetime) -> Archive:
    """The archive a link opens, checked against its row: a deleted archive, a revoked or expired link: 410."""
    link = session.get(DownloadLink, link_id)
    if link is None:
        raise LinkRefused(404, "No such download link.")
    archive = session.get(Archive, link.archive_id)
    if archive is None or archive.user_id != link.user_id:
        raise LinkRefused(404, "No such archive.")
    if archive.deleted_at is not None:  # first: it says more than "revoked", which deleting also did
        raise LinkRefused(410, gone_words(archive))
    if link.revoked_at is not None:
        raise LinkRefused(410, "This download link was revoked. Sign in to make a new one.")
    if link.expires_at <= now:
        raise LinkRefused(410, "This download link has expired. Sign in to make a new one.")
    return archive


def count_download(session: Session, link_id: str) -> None:
    """Count one fetch through the link (a single UPDATE: concurrent downloads never lose a count)."""
    session.execute(update(DownloadLink).where(DownloadLink.id == link_id).values(downloads=DownloadLink.downloads + 1))


@contextlib.contextmanager
def _opened(files: ArchiveFiles, archive: Archive) -> Iterator[IO[bytes]]:
    """The stored zip opened for seeking: the file itself, or a scratch copy of a bucket-held one."""
    with local_copy(files, archive.relpath) as path, path.open("rb") as f:
        yield f


def _find(f: IO[bytes], name: str) -> Member | None:
    return next((m for m in central_directory(f) if m.name == name), None)


def archive_manifest(files: ArchiveFiles, archive: Archive, *, changes_from: int | None = None) -> Manifest:
    """The stored archive's manifest.json: its meta (counts, vCard version, ...) and every file it lists.

    manifest.json is parsed as it is read from the zip, and the list it gives
    is packed (`FileTable`), so even a 150,000-file archive costs a few MB.
    `changes_from`: keep the `changes` items from that index on (`read_manifest`).
    `KeyError` if the zip holds no manifest, `ArchiveError` if it is not one.
    """
    with _manifest_chunks(files, archive) as chunks:
        return read_manifest(chunks, changes_from=changes_from)


def archive_changes(files: ArchiveFiles, archive: Archive, changes_from: int) -> dict[str, Any] | None:
    """The stored archive's `changes` section alone, items from `changes_from` on (`read_changes_section`)."""
    with _manifest_chunks(files, archive) as chunks:
        return read_changes_section(chunks, changes_from)


@contextlib.contextmanager
def _manifest_chunks(files: ArchiveFiles, archive: Archive) -> Iterator[Iterator[bytes]]:
    """manifest.json of the stored archive, as pieces; `KeyError` if the zip holds none."""
    with _opened(files, archive) as f:
        member = _find(f, MANIFEST_NAME)
        if member is None:
            raise KeyError(MANIFEST_NAME)
        yield zip_member_chunks(f, member)


# The kinds each archive holds, by id: archives never change, and a list page would read them again.
_HELD_KINDS: dict[str, tuple[str, ...]] = {}
_HELD_KINDS_KEPT = 4096
_FILES_KEY = b'\n  "files": ['  # the top-level list, last in every manifest.json (`Manifest.json_chunks`)


def archive_kinds(files: ArchiveFiles, archive: Archive) -> tuple[str, ...]:
    """The kinds of data the stored archive holds (its manifest's `kinds`), for pages that list archives.

    Why not always read the manifest: when every kind has items, every kind is
    held, and nothing is read. Otherwise only the manifest's head is read, up
    to its file list (which runs to MB in a large archive). An archive made
    before the option, or one that cannot be read, counts as holding every kind.
    """
    if all(any(archive.counts.get(key) for key in KIND_COUNTS[kind]) for kind in KINDS):
        return KINDS
    held = _HELD_KINDS.get(archive.id)
    if held is None:
        held = _read_kinds(files, archive)
        if len(_HELD_KINDS) >= _HELD_KINDS_KEPT:
            _HELD_KINDS.clear()
        _HELD_KINDS[archive.id] = held
    return held


def _read_kinds(files: ArchiveFiles, archive: Archive) -> tuple[str, ...]:
    head = b""
    try:
        with _manifest_chunks(files, archive) as chunks:
            for chunk in chunks:
                head += chunk
                if _FILES_KEY in head:
                    break
        document = json.loads(head[: head.index(_FILES_KEY)] + b'\n  "files": []}')
    except (ArchiveFilesError, KeyError, OSError, ValueError):  # ValueError: JSON, or no file list
        return KINDS
    kinds = document.get("kinds") if isinstance(document, dict) else None
    if not isinstance(kinds, list):
        return KINDS
    return tuple(kind for kind in KINDS if kind in kinds) or KINDS


def archive_parts(files: ArchiveFiles, archive: Archive) -> Iterator[ManifestFile]:
    """Every file the archive's manifest lists (path, SHA-256, size), manifest.json and SHA256SUMS aside."""
    manifest = archive_manifest(files, archive)
    return (entry for entry in manifest.files if entry.path not in _NOT_PARTS)


def checksums_lines(archive: Archive, parts: Iterable[ManifestFile]) -> Iterator[bytes]:
    """`SHA256SUMS` in the format `sha256sum -c` reads: the archive file itself, then every part.

    With `sha256sum -c --ignore-missing` the same file checks a downloaded
    archive, the parts fetched one by one into their folders, or both.
    """
    yield f"{archive.sha256}  {archive.filename}\n".encode()
    batch: list[str] = []
    for part in parts:
        batch.append(f"{part.sha256}  {part.path}\n")
        if len(batch) >= 1024:
            yield "".join(batch).encode("utf-8")
            batch.clear()
    if batch:
        yield "".join(batch).encode("utf-8")


def member_chunks(
    files: ArchiveFiles, archive: Archive, name: str, *, start: int = 0, length: int | None = None
) -> Iterator[bytes]:
    """The bytes `start` to `start + length` of one member, decompressed from the stored zip piece by piece.

    A generator: the zip is opened at the first byte asked for and closed after
    the last, and `KeyError` comes then when the archive holds no such member
    (check the name against `archive_parts` first to answer 404 before any
    byte). Bytes before `start` are decompressed and dropped: a deflated member
    cannot be entered in the middle, and this keeps memory flat.
    """
    with _opened(files, archive) as f:
        member = _find(f, name)
        if member is None or name in _NOT_PARTS:
            raise KeyError(name)
        skip, left = start, length
        for chunk in zip_member_chunks(f, member):
            if skip:
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            if chunk:
                yield chunk
            if left == 0:
                return
