"""Read a Lifeboat archive back: verify it in full, read members, restore an account's records.

Why verify everything before trusting anything: an archive comes back from the
user's disk or bucket, perhaps damaged or zipped again from the unpacked
folder. Each listed member must match manifest.json (SHA-256, size, ZIP CRC),
nothing unlisted may be in it, and no path may escape the extraction folder;
`exporters.archive.repack` says which members of a re-made zip stand for which
archive paths.

Why per-member records go to disk: a large account has 150,000 members; their
places in the zip and the manifest's list are kept in a `Spool` (SQLite in a
scratch folder) and manifest.json is parsed as a stream, so memory stays flat.

Sources are a path or a seekable binary file object (e.g. a download from the
archive store); this module opens only the paths it is given.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, TypeVar

from account.records import MAX_FILE_BYTES, Account, Calendar, CalendarInfo, Contact, Event, Note
from errors import InvalidInput
from exporters.archive.counts import KINDS
from exporters.archive.file_kinds import ADDED_FIX, AS_WRITTEN, OUTSIDE_LAYOUT, count_problems, file_figures, file_kind
from exporters.archive.manifest import (
    CHECKSUMS_NAME,
    MANIFEST_NAME,
    README_NAME,
    SIGNATURE_NAME,
    ArchiveError,
    Manifest,
    ManifestFile,
    checksums_chunks,
    parse_manifest,
    read_manifest,
)
from exporters.archive.places import ADDRESS_BOOK, included_kinds
from exporters.archive.repack import Kind, UnsafeMember, ZipSurvey, classify
from exporters.archive.signature import MAX_SIGNATURE_BYTES, KeyRing, SignatureCheck, check_signature
from exporters.archive.spool import Spool, iter_rows
from exporters.archive.unkept import Unkept
from exporters.archive.zipdir import SMALL_MEMBER as SMALL_MEMBER  # re-exported: bench/zip_members.py sets it
from exporters.archive.zipdir import Member, central_directory, member_chunks, small_member
from exporters.ical.reader import UnreadableEvent, stream_calendar, stream_calendar_items
from exporters.markdown.reader import read_note, read_note_and_unknown
from exporters.vcard.reader import stream_vcards

Source = str | os.PathLike[str] | BinaryIO | IO[bytes]
MAX_MANIFEST_BYTES = 256 << 20  # far above any real account; refuses zip bombs posing as one
MANIFEST_CHUNK = 1 << 16
# The most one member read whole (a note, an attachment) may hold: far above any real note or attachment
# (HEAVY's largest is 4 KiB; mail providers cap attachments at 25-50 MB), and low enough that a restore
# holding one stays within its memory bound.
MAX_WHOLE_MEMBER = MAX_FILE_BYTES  # what import lets a note or attachment be; manifest.json is parsed as read

_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


def _read_checked(f: IO[bytes], member: Member, expected: ManifestFile) -> Iterator[bytes]:
    """Yield a member's bytes, raising `ArchiveError` at the end if they do not match."""
    path = expected.path
    if member.file_size != expected.size:
        raise ArchiveError(f"{path}: size is {member.file_size} bytes in the zip, {expected.size} in manifest.json")
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in member_chunks(f, member):
            size += len(chunk)
            if size > expected.size:
                raise ArchiveError(f"{path}: larger than the {expected.size} bytes manifest.json lists")
            digest.update(chunk)
            yield chunk
    except _DAMAGE as exc:
        raise ArchiveError(f"{path}: damaged in the zip ({exc})") from None
    if size != expected.size:
        raise ArchiveError(f"{path}: {size} bytes, but manifest.json lists {expected.size}")
    if digest.hexdigest() != expected.sha256:
        raise ArchiveError(f"{path}: SHA-256 does not match manifest.json (the file was changed or damaged)")


def _check_small(f: IO[bytes], member: Member, expected: ManifestFile) -> None:
    """`_read_checked` for a member small enough to read whole (`zipdir.small_member`): the same checks."""
    path = expected.path
    if member.file_size != expected.size:
        raise ArchiveError(f"{path}: size is {member.file_size} bytes in the zip, {expected.size} in manifest.json")
    try:
        data = small_member(f, member)
    except _DAMAGE as exc:
        raise ArchiveError(f"{path}: damaged in the zip ({exc})") from None
    if hashlib.sha256(data).hexdigest() != expected.sha256:
        raise ArchiveError(f"{path}: SHA-256 does not match manifest.json (the file was changed or damaged)")


class ArchiveReader:
    """A verified archive opened for restores and checks: members are read by path and re-checked.

    `survey` says what verification passed over (folder entries, macOS
    extras, a top folder) in a zip the user made again from the unpacked files;
    `signature` what manifest.json.sig says, checked against `keys`.
    """

    def __init__(
        self,
        source: Source,
        *,
        scratch: Path | None = None,
        verified_sha256: str | None = None,
        keys: KeyRing | None = None,
    ) -> None:
        self.manifest, self.survey, self.signature, self._file, self._spool = _verified(
            source, keep=True, scratch=scratch, verified_sha256=verified_sha256, keys=keys
        )
        self._owns_file = not _is_file_object(source)

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()
        if self._owns_file:
            self._file.close()

    def paths(self) -> list[str]:
        """The user data in the archive: every listed file but README, SHA256SUMS and manifest."""
        return self.manifest.paths

    def member_chunks(self, path: str) -> Iterator[bytes]:
        """Yield the bytes of `path` in pieces, re-checked at the end; `KeyError` if not listed."""
        return _read_checked(self._file, *self._member(path))

    def listed(self, path: str) -> ManifestFile:
        """What the verified manifest lists for `path` (its SHA-256 and size); `KeyError` if nothing."""
        return self._member(path)[1]

    def _member(self, path: str) -> tuple[Member, ManifestFile]:
        row = self._spool.first(f"SELECT {_JOINED} WHERE listed.path = ?", (path,))
        if row is None:
            raise KeyError(path)
        return Member(*row[1:]), self.manifest.files[row[0]]

    def open_member(self, path: str) -> bytes:
        """Return the bytes of `path`, re-checked; `KeyError` if the manifest does not list it.

        `ArchiveError` for a member larger than `MAX_WHOLE_MEMBER`: it would be held
        in memory whole (a note, an attachment), so a consistent archive with a
        gigabyte note must be refused, not read until the machine runs out.
        """
        member, expected = self._member(path)
        if expected.size > MAX_WHOLE_MEMBER:
            raise ArchiveError(
                f"{path}: {expected.size / (1 << 20):.0f} MiB, more than the {MAX_WHOLE_MEMBER >> 20} MiB a note "
                "or attachment may be; Lifeboat never makes such a file, so this archive was edited or is not ours"
            )
        return b"".join(_read_checked(self._file, member, expected))

    def paths_in_zip_order(self) -> Iterator[str]:
        """Every file manifest.json lists (README and SHA256SUMS too) in zip order: reads never seek back."""
        query = "SELECT zip.path FROM zip JOIN listed ON listed.path = zip.path ORDER BY zip.seq"
        for (path,) in iter_rows(self._spool.execute(query)):
            yield path

    def files_in_zip_order(self) -> Iterator[ManifestFile]:
        """`paths_in_zip_order` with what manifest.json lists for each (SHA-256, size), verified already.

        Why: a check can tell two files with the same bytes apart from their
        listed SHA-256 without reading them again (`exporters.archive.check`).
        """
        query = "SELECT listed.seq FROM zip JOIN listed ON listed.path = zip.path ORDER BY zip.seq"
        files = self.manifest.files
        for (seq,) in iter_rows(self._spool.execute(query)):
            yield files[seq]


def open_archive(
    source: Source, *, scratch: Path | None = None, verified_sha256: str | None = None, keys: KeyRing | None = None
) -> ArchiveReader:
    """Verify the archive at `source` (a path or a seekable binary file) in full, then open it for reading.

    `verified_sha256`: the SHA-256 of the whole file, which another process has
    verified in full already (`jobs.restore_worker`). The file's digest is then
    checked instead of every member (0.04 s instead of ~0.9 s CPU for a 55 MB
    archive): the zip and manifest are still read, and each member read is still
    checked against its listed SHA-256. `ArchiveError` if the digest differs.
    `keys`: the key set to check manifest.json.sig with (see `verify_archive`).
    """
    return ArchiveReader(source, scratch=scratch, verified_sha256=verified_sha256, keys=keys)


def iter_members(source: Source) -> Iterator[tuple[str, bytes]]:
    """Yield `(path, bytes)` for each user file of a verified archive, in archive order."""
    with open_archive(source) as archive:
        for member in archive.paths():
            yield member, archive.open_member(member)


def open_member(source: Source, member: str) -> bytes:
    """Return one member of the archive at `source` after verifying the whole archive."""
    with open_archive(source) as archive:
        return archive.open_member(member)


# `zip` holds the members that are files (not folder entries or macOS extras): `name` as the zip
# spells it (to find its header), `path` the archive path it stands for (`exporters.archive.repack`).
_READER_SCHEMA = """
CREATE TABLE zip (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, flags INTEGER, method INTEGER, crc INTEGER,
                  csize INTEGER, size INTEGER, offset INTEGER, path TEXT NOT NULL);
CREATE TABLE listed (seq INTEGER PRIMARY KEY, path TEXT NOT NULL)
"""
# Each listed file with its zip member (NULLs when the zip lacks it), for `SELECT ... WHERE/ORDER BY`.
_JOINED = (
    "listed.seq, zip.name, zip.flags, zip.method, zip.crc, zip.csize, zip.size, zip.offset "
    "FROM listed LEFT JOIN zip ON zip.path = listed.path"
)


def archive_owner(source: Source) -> str | None:
    """The address the archive was made for (its manifest's `user`, lower case), or None if it names none.

    Reads manifest.json alone, nothing else is verified: for messages and
    housekeeping, never to trust the archive's content. `ArchiveError` (or
    `KeyError`, `OSError`) when it cannot be read.
    """
    user = parse_manifest(read_member(source, MANIFEST_NAME)).meta.get("user")
    return user.strip().lower() if isinstance(user, str) and user.strip() else None


def read_member(source: Source, name: str) -> bytes:
    """One member's bytes, CRC-checked but without verifying the rest (e.g. manifest.json to attach).

    Unlike `zipfile.ZipFile(path).read(name)`, it scans the central directory
    one entry at a time instead of loading an object per member, so memory is
    the member's size whatever the archive holds. `KeyError` if it is absent.
    """
    f = _open_file(source)
    try:
        member = next((m for m in central_directory(f) if m.name == name), None)
        if member is None:
            raise KeyError(name)
        return b"".join(member_chunks(f, member))
    except (*_DAMAGE, struct.error) as exc:
        raise ArchiveError(f"{name}: cannot be read from {_label(source)} ({exc})") from None
    finally:
        if not _is_file_object(source):
            f.close()


def _is_file_object(source: Source) -> bool:
    return not isinstance(source, str | os.PathLike)


def _label(source: Source) -> str:
    """How messages name the archive: its path, or the file object's name if it has one."""
    return str(source) if not _is_file_object(source) else str(getattr(source, "name", "the archive"))


def _open_file(source: Source) -> IO[bytes]:
    """A file object given is used as is (the caller closes it); a path is opened here."""
    if not isinstance(source, str | os.PathLike):
        return source
    path = Path(source)
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ArchiveError(f"{path} does not exist") from None
    except OSError as exc:
        raise ArchiveError(f"{path} cannot be read ({exc})") from None


def _scan_members(path: str, f: IO[bytes], spool: Spool) -> tuple[Member | None, Member | None, ZipSurvey]:
    """Record every file member in `spool` (refusing unsafe and repeated names); return manifest.json's and .sig's.

    Folder entries and macOS extras are checked for safety, counted in the
    returned `ZipSurvey` and left out; a top folder shared by everything (a zip of
    the unpacked folder made from outside it) is dropped from the paths.
    """
    rows = spool.table("zip", 9)
    survey = ZipSurvey()
    try:
        for seq, member in enumerate(central_directory(f)):
            kind, member_path = classify(member.name, member.mode)
            survey.add(kind, member_path)
            if kind is Kind.FOLDER and member.file_size:
                raise ArchiveError(f"member {member.name!r} is a folder entry that holds data")
            if kind is Kind.FILE:
                rows.add((seq, *member[:7], member_path))
    except UnsafeMember as exc:
        raise ArchiveError(str(exc)) from None
    except (zipfile.BadZipFile, OSError, ValueError, struct.error) as exc:
        raise ArchiveError(f"{path} is not a readable ZIP archive; is it truncated? ({exc})") from None
    prefix = survey.prefix()
    if prefix:
        spool.execute("UPDATE zip SET path = substr(path, ?)", (len(prefix) + 1,))
    twice = spool.first("SELECT name FROM zip GROUP BY path HAVING count(*) > 1 ORDER BY max(seq) LIMIT 1")
    if twice is not None:
        raise ArchiveError(f"member {twice[0]!r} appears twice in the zip")
    spool.execute("CREATE UNIQUE INDEX zip_path ON zip (path)")
    found = []
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        row = spool.first("SELECT name, flags, method, crc, csize, size, offset FROM zip WHERE path = ?", (name,))
        found.append(None if row is None else Member(*row))
    return found[0], found[1], survey


def _verified(
    source: Source,
    *,
    keep: bool = False,
    scratch: Path | None = None,
    verified_sha256: str | None = None,
    keys: KeyRing | None = None,
) -> tuple[Manifest, ZipSurvey, SignatureCheck, IO[bytes], Spool]:
    """Verify the archive at `source` (see `verify_archive`); return the open file and the spool of members.

    With `keep`, the caller closes both; otherwise they are closed already (a
    file object the caller gave is never closed here).
    """
    f = _open_file(source)
    owned = not _is_file_object(source)
    spool = Spool(_READER_SCHEMA, folder=scratch)
    try:
        if verified_sha256 is not None:
            _check_file_digest(_label(source), f, verified_sha256)
        manifest, survey, signature = _verify(_label(source), f, spool, keys, members=verified_sha256 is None)
    except BaseException:
        spool.close()
        if owned:
            f.close()
        raise
    if not keep:
        spool.close()
        if owned:
            f.close()
    return manifest, survey, signature, f, spool


def _check_file_digest(path: str, f: IO[bytes], sha256: str) -> None:
    start, digest = f.tell(), hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    f.seek(start)
    found = digest.hexdigest()
    if found != sha256:
        raise ArchiveError(f"{path}: changed since it was verified (SHA-256 {found}, not {sha256})")


def _verify(
    path: str, f: IO[bytes], spool: Spool, keys: KeyRing | None, *, members: bool = True
) -> tuple[Manifest, ZipSurvey, SignatureCheck]:
    manifest_member, signature_member, survey = _scan_members(path, f, spool)
    if manifest_member is None:
        raise ArchiveError(f"{MANIFEST_NAME} is missing: this is not a complete Lifeboat archive")
    if manifest_member.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{MANIFEST_NAME} is implausibly large ({manifest_member.file_size} bytes)")
    manifest_digest = hashlib.sha256()
    try:
        chunks = _hashed(member_chunks(f, manifest_member, MANIFEST_CHUNK), manifest_digest)
        manifest = read_manifest(chunks, seen=spool.keys("listed_keys"))
    except _DAMAGE as exc:
        raise ArchiveError(f"{MANIFEST_NAME}: damaged in the zip ({exc})") from None
    signature = _check_signature(f, signature_member, manifest_digest.hexdigest(), keys)
    listed = spool.table("listed", 2)
    has = {README_NAME: False, CHECKSUMS_NAME: False}
    for seq, entry in enumerate(manifest.files):
        listed.add((seq, entry.path))
        if entry.path in has:
            has[entry.path] = True
    for required, present in has.items():
        if not present:
            raise ArchiveError(f"{required}: not listed in manifest.json, which every archive has")
    spool.execute("CREATE UNIQUE INDEX listed_path ON listed (path)")
    extra = spool.first(
        "SELECT name FROM zip WHERE path NOT IN (?, ?) AND path NOT IN (SELECT path FROM listed) ORDER BY seq LIMIT 1",
        (MANIFEST_NAME, SIGNATURE_NAME),
    )
    if extra is not None:
        raise ArchiveError(f"{extra[0]}: in the zip but not listed in manifest.json (added later?)")
    if not members:
        return manifest, survey, signature  # verified in full by whoever gave the file's digest
    rows = iter_rows(spool.execute(f"SELECT {_JOINED} ORDER BY listed.seq"))
    for row, expected in zip(rows, manifest.files, strict=True):
        if row[1] is None:
            raise ArchiveError(f"{expected.path}: listed in manifest.json but missing from the zip")
        member = Member(*row[1:])
        if expected.path != CHECKSUMS_NAME and max(member.file_size, member.compress_size) <= SMALL_MEMBER:
            _check_small(f, member, expected)
            continue
        checked = _read_checked(f, member, expected)
        if expected.path != CHECKSUMS_NAME:
            for _ in checked:
                pass
            continue
        for _ in checked:
            pass
        # The member matched its listed hash; it agrees if the manifest's own list hashes the same.
        digest, size = hashlib.sha256(), 0
        for chunk in checksums_chunks(manifest.files):
            digest.update(chunk)
            size += len(chunk)
        if (digest.hexdigest(), size) != (expected.sha256, expected.size):
            raise ArchiveError(f"{CHECKSUMS_NAME}: does not agree with manifest.json")
    return manifest, survey, signature


def _hashed(chunks: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    """`chunks` as they come, each added to `digest` (manifest.json's SHA-256, for its signature)."""
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _check_signature(f: IO[bytes], member: Member | None, manifest_sha256: str, keys: KeyRing | None) -> SignatureCheck:
    """Read manifest.json.sig (if any) and check it against manifest.json's SHA-256 (`check_signature`)."""
    data = None
    if member is not None:
        if max(member.file_size, member.compress_size) > MAX_SIGNATURE_BYTES:
            raise ArchiveError(f"{SIGNATURE_NAME} is implausibly large ({member.file_size} bytes)")
        try:
            data = small_member(f, member)
        except _DAMAGE as exc:
            raise ArchiveError(f"{SIGNATURE_NAME}: damaged in the zip ({exc})") from None
    return check_signature(data, manifest_sha256, keys)


def verify_archive(
    source: Source, *, scratch: Path | None = None, keys: KeyRing | None = None, require_signature: bool = False
) -> Manifest:
    """Check the archive at `source` (a path, or a seekable binary file the caller closes) completely.

    Returns its manifest.

    When the archive holds manifest.json.sig, it must sign manifest.json's
    exact bytes: a manifest changed after signing is refused, and so is a
    signature that does not hold for a key `keys` knows (`exporters.archive.signature`).
    An unsigned archive, or one signed by a key `keys` does not know, passes on
    its checksums unless `require_signature`, which demands a valid signature.

    It must be a zip with a known-format `manifest.json`; every listed file
    must be present with the listed size and SHA-256 (and a good CRC); nothing
    else may be in it; no member path may escape the extraction folder; and
    SHA256SUMS must agree with the manifest. Raises `ArchiveError` naming the
    file and the problem. Memory stays flat in the number of members: they are
    checked one at a time against records in a `Spool` in `scratch` (None:
    SQLite's own temporary folder).

    A zip made again from the unpacked files verifies too (`exporters.archive.repack`):
    folder entries and the files macOS adds are passed over, names are read
    as the zipping tool meant them, and one top folder around everything is
    dropped; unsafe names are refused wherever they appear.
    """
    manifest, _, signature, _, _ = _verified(source, scratch=scratch, keys=keys)
    if require_signature and not signature.valid:
        raise ArchiveError(f"no valid signature: {signature.line()}")
    return manifest


def read_account(source: Source, *, email: str | None = None) -> Account:
    """Records of the archive at `source`, following the layout its manifest records (for restore).

    `email` overrides the archive's owner. Members are read through
    `ArchiveReader`, which knows the archive paths they stand for: in a zip the
    user made again, the zip's own names may differ and `zipfile` would not find them.
    """
    return read_account_and_kinds(source, email=email)[0]


def read_account_and_kinds(source: Source, *, email: str | None = None) -> tuple[Account, tuple[str, ...]]:
    """`read_account`, and which kinds of data the archive holds (its manifest's `kinds`).

    Why both: an archive made with some kinds left out holds none of them, which
    is not the same as an account that has none; restore replaces only the kinds
    the archive holds. Archives made before the option hold every kind.
    Everything in memory: for tests and small accounts; `open_records` streams.
    """
    with open_records(source, email=email) as records:
        account = Account(
            email=records.email,
            display_name=records.display_name,
            timezone=records.timezone,
            contacts=tuple(records.contacts()),
            calendars=tuple(Calendar(info, tuple(events)) for info, events in records.calendars()),
            notes=tuple(records.notes()),
        )
        return account, records.kinds


class ArchiveRecords:
    """A verified archive's records as streams, following the layout its manifest records (for restore).

    Why streams: a restore must not hold the account in memory (457 MiB at
    10,000 contacts when it did). Contacts come one by one from the address
    book as it is decompressed, each calendar as its info and then its events,
    notes one member at a time; each kind is read once, in archive order.
    Members are read through `ArchiveReader`, which knows the archive paths they
    stand for (in a zip the user made again the zip's own names may differ) and
    re-checks each one's SHA-256 as it is read. Only the kinds the archive holds
    (`kinds`) have records; the others are empty.
    """

    def __init__(self, archive: ArchiveReader, *, email: str | None = None) -> None:
        self._archive = archive
        meta = archive.manifest.meta
        self.kinds = archive_kinds(meta)
        self._layout = meta["layout"]
        _refuse_unread_files(archive, self._layout)
        self.email = (email or meta["user"]).strip().lower()
        self.display_name: str | None = meta.get("display_name")
        self.timezone: str = meta.get("timezone", "UTC")
        # What the records read could not keep (`exporters.archive.unkept`), for the restore to say.
        self.unkept = Unkept()

    @property
    def archive(self) -> ArchiveReader:
        return self._archive

    @property
    def address_book(self) -> str | None:
        """The address book's path; None when contacts were left out of this archive."""
        book: str | None = self._layout.get("address_book", ADDRESS_BOOK)
        return book

    def contacts(self) -> Iterator[Contact]:
        """Each contact; what of a card `Contact.extra` cannot keep (a repeat, parameters) is added to `unkept`."""
        book = self.address_book
        if book is None:
            return iter(())

        def unread(uid: str, names: list[str]) -> None:
            self.unkept.add("contact", uid, names)

        return _naming(book, stream_vcards(self._archive.member_chunks(book), unread=unread))

    def calendars(self) -> Iterator[tuple[CalendarInfo, Iterator[Event]]]:
        """Each calendar's info, then its events: read them before asking for the next calendar.

        What no record keeps (another program's X- properties, a VTODO) is added to `unkept`.
        """
        for name in self._layout["calendars"]:

            def unread(item: str, names: list[str], path: str = name) -> None:
                self.unkept.add("event" if item else "calendar", item or path, names)

            yield from self._calendars(functools.partial(stream_calendar, unread=unread), [name])

    def calendar_items(self) -> Iterator[tuple[CalendarInfo, Iterator[Event | UnreadableEvent]]]:
        """`calendars`, with an `UnreadableEvent` in the place of each event that could not be read."""
        return self._calendars(stream_calendar_items)

    def _calendars(
        self, stream: Callable[[Iterable[bytes]], tuple[CalendarInfo, Iterator[T]]], names: Iterable[str] | None = None
    ) -> Iterator[tuple[CalendarInfo, Iterator[T]]]:
        for name in self._layout["calendars"] if names is None else names:
            try:
                info, events = stream(self._archive.member_chunks(name))
            except InvalidInput as exc:
                raise _named(name, exc) from None
            yield info, _naming(name, events)

    def notes(self) -> Iterator[Note]:
        """Each note; the front matter fields a note has no place for are added to `unkept`."""
        member = self._archive.open_member
        for name in self._layout["notes"]:
            note, unknown = read_note_and_unknown(name, member(name), member)
            self.unkept.add("note", f"{note.id} ({name})", unknown)
            yield note


def _refuse_unread_files(archive: ArchiveReader, layout: Mapping[str, Any]) -> None:
    """Refuse, before any record is read, an archive holding a file that restore would leave behind unread.

    Restore reads what the layout points to; a file outside it, or one more
    calendar or attachment than manifest.json's counts say (a file added later,
    listed in the manifest and SHA256SUMS and linked by no note), is what
    `verify` refuses by the same rule (`exporters.archive.file_kinds`). Only
    paths are looked at (the manifest is in memory already); the notes are read
    only when a count is off, to name the file no note links.
    """
    notes = set(layout.get("notes", ()))
    files: Counter[str] = Counter()
    for path in archive.paths():
        kind = file_kind(path, notes)
        if kind == "other":
            raise InvalidInput(f"{path}: {OUTSIDE_LAYOUT}")
        files[kind] += 1
    problems = count_problems(archive.manifest.counts, file_figures(files))
    if not problems:
        return
    problem = problems[0][1]
    unread = _first_unread(archive, layout, notes)
    if unread is not None:
        path, why = unread
        raise InvalidInput(f"{path}: {why} (manifest.json {problem}); {ADDED_FIX}")
    raise InvalidInput(f"{MANIFEST_NAME}: {problem}; the archive was changed after the export: {AS_WRITTEN}")


def _first_unread(archive: ArchiveReader, layout: Mapping[str, Any], notes: set[str]) -> tuple[str, str] | None:
    """The first calendar the layout does not list or attachment no note links (in manifest order), and which."""
    linked: set[str] = set()

    def link(path: str) -> bytes:
        linked.add(path)
        return b""

    for name in notes:
        try:
            read_note(name, archive.open_member(name), link)
        except (ValueError, KeyError):
            continue  # restore names this note's own problem when it reads it
    calendars = set(layout.get("calendars", ()))
    for path in archive.paths():
        kind = file_kind(path, notes)
        if kind == "ics" and path not in calendars:
            return path, "a calendar manifest.json's layout does not list"
        if kind == "attachment" and path not in linked:
            return path, "an attachment no note links"
    return None


T = TypeVar("T")


def _naming(path: str, items: Iterator[T]) -> Iterator[T]:
    """`items`, with the member's path put before the message of an `InvalidInput` they raise."""
    try:
        yield from items
    except InvalidInput as exc:
        raise _named(path, exc) from None


def _named(path: str, exc: InvalidInput) -> InvalidInput:
    return InvalidInput(f"{path}: {exc.args[0]}", exc.problems)


@contextmanager
def open_records(
    source: Source,
    *,
    email: str | None = None,
    scratch: Path | None = None,
    verified_sha256: str | None = None,
    keys: KeyRing | None = None,
) -> Iterator[ArchiveRecords]:
    """Verify the archive at `source` in full (`ArchiveError` if it fails), then stream its records.

    `verified_sha256`, `keys`: see `open_archive` (its signature is `records.archive.signature`).
    """
    with open_archive(source, scratch=scratch, verified_sha256=verified_sha256, keys=keys) as archive:
        yield ArchiveRecords(archive, email=email)


def archive_kinds(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """The kinds a manifest's meta says the archive holds: all of them when it does not say."""
    listed = meta.get("kinds")
    if listed is None:
        return KINDS
    if not isinstance(listed, list) or not all(isinstance(kind, str) for kind in listed):
        raise ArchiveError(f"manifest.json: kinds must be a list of names, not {listed!r}")
    try:
        return included_kinds(listed)
    except ArchiveError as exc:
        raise ArchiveError(f"manifest.json: {exc}") from None
