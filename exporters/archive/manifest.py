"""The archive's `manifest.json` and `SHA256SUMS`: what is inside and how to check it.

Why a manifest with a hash per file: a backup is only worth something if its
owner can prove, years later and without Lifeboat, that nothing is missing or
damaged. The manifest lists every file with its SHA-256 and size and carries a
format version so future readers know what they are looking at; `SHA256SUMS`
says the same in the format `sha256sum -c` and `shasum -a 256 -c` read.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from exporters.archive.changes import SECTION as CHANGES
from exporters.archive.changes import StreamedItems, check_change, check_section
from exporters.archive.paths import KeySet, collision_key, unsafe_path_reason

FORMAT = "lifeboat-archive"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MANIFEST_NAME = "manifest.json"
README_NAME = "README.txt"
CHECKSUMS_NAME = "SHA256SUMS"
# The service's signature over manifest.json's bytes (`exporters.archive.signature`); listed nowhere.
SIGNATURE_NAME = "manifest.json.sig"
RESERVED_NAMES = frozenset({MANIFEST_NAME, README_NAME, CHECKSUMS_NAME, SIGNATURE_NAME})
GENERATOR = "Lifeboat"
# Keys the archive writer owns; everything else in manifest.json is the caller's meta.
_FORMAT_KEYS = ("format", "format_version", "generator", "created_at", "files")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_BATCH = 1024  # files per chunk when streaming manifest.json or SHA256SUMS
_READ_AHEAD = 1 << 16  # characters of manifest.json read at a time
_WHITESPACE = re.compile(r"[ \t\n\r]*")
KEPT_CHANGES = 256  # items of manifest.json's `changes` a parsed manifest keeps (`_read_changes`)


class ArchiveError(ValueError):
    """An archive that cannot be written, or that fails verification; the message says why."""


@dataclass(frozen=True)
class ManifestFile:
    path: str
    sha256: str  # lower-case hex
    size: int


class FileTable(Sequence[ManifestFile]):
    """The files a manifest lists, packed into a few flat buffers.

    Why: a large account's archive lists 150,000 files, and as `ManifestFile`
    objects (with their strings) each costs about 500 bytes; packed, it is the
    UTF-8 path plus 48 bytes. Items are `ManifestFile`s made on access.
    """

    __slots__ = ("_digests", "_ends", "_paths", "_sizes")

    def __init__(self, files: Iterable[ManifestFile] = ()) -> None:
        self._paths = bytearray()
        self._ends = array("Q")
        self._digests = bytearray()
        self._sizes = array("Q")
        for f in files:
            self.append(f.path, f.sha256, f.size)

    def append(self, path: str, sha256: str, size: int) -> None:
        """Add a file; `sha256` must be 64 lower-case hex digits, `size` a whole number >= 0."""
        if not _SHA256.match(sha256) or type(size) is not int or size < 0:
            raise ValueError(f"not a SHA-256 and size: {sha256!r}, {size!r}")
        self._paths += path.encode("utf-8")
        self._ends.append(len(self._paths))
        self._digests += bytes.fromhex(sha256)
        self._sizes.append(size)

    def __len__(self) -> int:
        return len(self._sizes)

    def _item(self, index: int) -> ManifestFile:
        start = self._ends[index - 1] if index else 0
        path = self._paths[start : self._ends[index]].decode("utf-8")
        return ManifestFile(path, self._digests[32 * index : 32 * index + 32].hex(), self._sizes[index])

    @overload
    def __getitem__(self, index: int) -> ManifestFile: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ManifestFile, ...]: ...
    def __getitem__(self, index: int | slice) -> ManifestFile | tuple[ManifestFile, ...]:
        if isinstance(index, slice):
            return tuple(self._item(i) for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("file index out of range")
        return self._item(index)

    def __iter__(self) -> Iterator[ManifestFile]:
        return (self._item(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable):
            return (self._paths, self._ends, self._digests, self._sizes) == (
                other._paths,
                other._ends,
                other._digests,
                other._sizes,
            )
        if isinstance(other, tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable: it grows (typeshed wants a method)

    def __repr__(self) -> str:
        return f"<FileTable of {len(self)} files>"


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` says: format, time, the caller's meta, and every file."""

    created_at: dt.datetime  # aware UTC
    files: Sequence[ManifestFile]  # a `FileTable` when read from an archive
    # The caller's meta, e.g. user (email), counts, vcard_version, layout; JSON values.
    meta: Mapping[str, Any] = field(default_factory=dict)
    generator: str = GENERATOR
    format_version: int = FORMAT_VERSION

    @property
    def email(self) -> str | None:
        value = self.meta.get("email", self.meta.get("user"))
        return value if isinstance(value, str) else None

    @property
    def counts(self) -> Mapping[str, int]:
        value = self.meta.get("counts")
        return value if isinstance(value, Mapping) else {}

    @property
    def paths(self) -> list[str]:
        """The user's files: everything listed except README, SHA256SUMS and the manifest."""
        return [f.path for f in self.files if f.path not in RESERVED_NAMES]

    def file(self, path: str) -> ManifestFile | None:
        """Return the entry for `path`, or None when the manifest does not list it."""
        for entry in self.files:
            if entry.path == path:
                return entry
        return None

    def to_json(self) -> bytes:
        """The exact bytes of `manifest.json` (UTF-8, indented for people reading it)."""
        return b"".join(self.json_chunks())

    def json_chunks(self, files: Iterable[ManifestFile] | None = None) -> Iterator[bytes]:
        """`to_json()` in pieces, listing `files` (default: `self.files`) as they come.

        Why: the file list is most of the manifest (150 bytes a file); streamed,
        it never sits in memory whole. The bytes are exactly what
        `json.dumps(document, ensure_ascii=False, indent=2)` gives, "files" last.
        """
        meta = {k: v for k, v in self.meta.items() if k not in _FORMAT_KEYS}
        streams: list[StreamedItems] = []
        document: dict[str, Any] = {
            "format": FORMAT,
            "format_version": self.format_version,
            "generator": self.generator,
            "created_at": format_utc(self.created_at),
            **{k: _stand_ins(v, streams) for k, v in meta.items()},
            "files": [],
        }
        head = json.dumps(document, ensure_ascii=False, indent=2)
        empty = "[]\n}"
        if not head.endswith(f'"files": {empty}'):
            raise ValueError("manifest.json must end with its files list")
        head = head[: -len(empty)]
        for index, stream in enumerate(streams):
            before, head = _split_at(head, json.dumps(_stand_in(index), ensure_ascii=False))
            yield before.encode("utf-8")
            yield from _streamed(stream, before.rpartition("\n")[2])
        yield head.encode("utf-8")
        string = json.JSONEncoder(ensure_ascii=False).encode
        parts: list[str] = []
        separator = "[\n"
        for f in self.files if files is None else files:
            parts.append(
                f'{separator}    {{\n      "path": {string(f.path)},\n'
                f'      "sha256": {string(f.sha256)},\n      "size": {int(f.size)}\n    }}'
            )
            separator = ",\n"
            if len(parts) >= _BATCH:
                yield "".join(parts).encode("utf-8")
                parts.clear()
        parts.append(empty + "\n" if separator == "[\n" else "\n  ]\n}\n")
        yield "".join(parts).encode("utf-8")


def _stand_in(index: int) -> str:
    return f"\x00streamed-items-{index}\x00"  # no text of ours holds U+0000 (the NUL rule)


def _stand_ins(value: Any, streams: list[StreamedItems]) -> Any:
    """`value` with each `StreamedItems` in it (at any depth of objects) replaced by a stand-in string."""
    if isinstance(value, StreamedItems):
        streams.append(value)
        return _stand_in(len(streams) - 1)
    if isinstance(value, Mapping):
        return {k: _stand_ins(v, streams) for k, v in value.items()}
    return value


def plain_meta(value: Any) -> Any:
    """`value` with each streamed list empty: what to check for JSON without reading the lists."""
    return _stand_ins(value, []) if not isinstance(value, StreamedItems) else []


def _split_at(text: str, token: str) -> tuple[str, str]:
    before, found, after = text.partition(token)
    if not found or token in after:
        raise ValueError("a streamed list's place in manifest.json is not unique")
    return before, after


def _streamed(items: StreamedItems, line: str) -> Iterator[bytes]:
    """A list of encoded items (each `json.dumps(..., indent=2)`) as `json.dumps` indents it after `line`."""
    indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
    parts: list[str] = []
    separator = "[\n"
    for text in items:
        parts.append(separator + indent + text.replace("\n", "\n" + indent))
        separator = ",\n"
        if len(parts) >= _BATCH:
            yield "".join(parts).encode("utf-8")
            parts.clear()
    parts.append("[]" if separator == "[\n" else "\n" + indent[:-2] + "]")
    yield "".join(parts).encode("utf-8")


def format_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def manifest_from_meta(meta: Mapping[str, Any], now: dt.datetime) -> Manifest:
    """Build the file-less manifest for `write_archive`, checking `meta` before any byte is written.

    `meta` usually holds `user` (or `email`), `counts` (contacts, events,
    notes, ...) and optionally `generator`; every other JSON value is kept.
    """
    if now.tzinfo is None:
        raise ArchiveError("the archive time must be timezone-aware (UTC)")
    rest = {k: v for k, v in meta.items() if k != "generator"}
    clash = sorted(set(rest) & set(_FORMAT_KEYS))
    if clash:
        raise ArchiveError(f"meta may not set {', '.join(clash)}: the archive writer sets them")
    changes = rest.get(CHANGES)
    if isinstance(changes, Mapping) and changes.get("items_elided"):
        raise ArchiveError("meta 'changes' was read back without its items (too many to keep): it cannot be written")
    counts = rest.get("counts", {})
    if not isinstance(counts, Mapping) or not all(isinstance(k, str) and type(v) is int for k, v in counts.items()):
        raise ArchiveError("meta 'counts' must map names to whole numbers")
    manifest = Manifest(
        created_at=now.astimezone(dt.UTC),
        files=(),
        meta=rest,
        generator=str(meta.get("generator", GENERATOR)),
    )
    try:
        manifest.to_json()
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"meta cannot be stored in manifest.json: {exc}") from None
    return manifest


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ArchiveError(f"manifest.json: {message}")


def _add_file(files: FileTable, seen: KeySet, raw: Any, index: int) -> None:
    _require(isinstance(raw, dict), f"files[{index}] is not an object")
    path, sha, size = raw.get("path"), raw.get("sha256"), raw.get("size")
    _require(isinstance(path, str), f"files[{index}] has no path")
    reason = unsafe_path_reason(path)
    _require(reason is None, f"file {path!r} has an unsafe path: {reason}")
    _require(isinstance(sha, str) and bool(_SHA256.match(sha)), f"file {path!r} has no valid sha256")
    _require(type(size) is int and size >= 0, f"file {path!r} has no valid size")
    key = collision_key(path)
    _require(key not in seen, f"lists {path!r} twice (or twice in different case)")
    seen.add(key)
    files.append(path, sha, size)


def _check_head(document: Mapping[str, Any]) -> None:
    _require(document.get("format") == FORMAT, f"format is {document.get('format')!r}, not {FORMAT!r}")
    version = document.get("format_version")
    _require(
        version in SUPPORTED_VERSIONS,
        f"format_version {version!r} is not one this Lifeboat understands "
        f"({', '.join(map(str, sorted(SUPPORTED_VERSIONS)))}); use a newer Lifeboat",
    )


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check `manifest.json`, raising `ArchiveError` that says what is wrong."""
    return read_manifest([data])


def read_manifest(chunks: Iterable[bytes], *, seen: KeySet | None = None, changes_from: int | None = None) -> Manifest:
    """Parse and check `manifest.json` from its bytes in pieces; `ArchiveError` says what is wrong.

    Why pieces: the file list of a large account's manifest runs to tens of MB
    and, as parsed JSON, to hundreds. It is read one entry at a time into a
    `FileTable`; `seen` (default: a set) holds the entries' collision keys to
    catch a path listed twice, and may keep them on disk.

    `changes_from` keeps one window of the `changes` items instead of the first
    ones: items `changes_from` to `changes_from + KEPT_CHANGES` (`_read_changes`),
    so a page can show any part of a list too long to keep whole.
    """
    if changes_from is not None and changes_from < 0:
        raise ValueError(f"changes_from must be 0 or more, not {changes_from}")
    files = FileTable()
    seen = set() if seen is None else seen
    reader = _JsonReader(chunks)
    document: dict[str, Any] = {}
    try:
        if reader.peek() != "{":
            json.loads(reader.rest())  # says what is wrong, if anything
            _require(False, "is not a JSON object")
        reader.take("{")
        while reader.peek() != "}":
            if document:
                reader.take(",")
            if reader.peek() != '"':
                raise reader.error("Expecting property name enclosed in double quotes")
            key = reader.value()
            reader.take(":")
            if key == "files" and reader.peek() == "[":
                _require(len(files) == 0 and document.get("files") is not files, "has two files lists")
                if "format" in document:
                    _check_head(document)  # a future format's files are not for us to judge
                document["files"] = files
                reader.take("[")
                while reader.peek() != "]":
                    if len(files):
                        reader.take(",")
                    _add_file(files, seen, reader.value(), len(files))
                reader.take("]")
            elif key == CHANGES and reader.peek() == "{":
                document[key] = _read_changes(reader, changes_from)
            else:
                document[key] = reader.value()
        reader.take("}")
        reader.end()
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"manifest.json is not valid JSON: {exc}") from None
    _check_head(document)
    try:
        created_at = dt.datetime.fromisoformat(document.get("created_at"))  # type: ignore[arg-type]  # TypeError caught
    except (TypeError, ValueError):
        raise ArchiveError("manifest.json: created_at is not an ISO 8601 time") from None
    _require(created_at.tzinfo is not None, "created_at has no time zone")
    _require(document.get("files") is files, "has no files list")
    _require(isinstance(document.get("counts", {}), dict), "counts is not an object")
    _require(
        CHANGES not in document or isinstance(document[CHANGES], dict), "changes is not an object"
    )  # archives made before the section have none: nothing to check then
    return Manifest(
        created_at=created_at.astimezone(dt.UTC),
        files=files,
        meta={k: v for k, v in document.items() if k not in _FORMAT_KEYS},
        generator=str(document.get("generator", "")),
        format_version=document["format_version"],
    )


def read_changes_section(chunks: Iterable[bytes], changes_from: int) -> dict[str, Any] | None:
    """Only the `changes` section of `manifest.json`, with the items `read_manifest(changes_from=)` keeps.

    Why apart: a page of changes needs nothing else, and the section comes before
    the file list, which is most of a big archive's manifest (150,000 entries);
    reading stops once the section is read. None if the document has none. The
    items are checked as `read_manifest` checks them; the rest of the document is
    not (the archive was verified when it was written; this only shows it).
    """
    if changes_from < 0:
        raise ValueError(f"changes_from must be 0 or more, not {changes_from}")
    reader = _JsonReader(chunks)
    try:
        reader.take("{")
        first = True
        while reader.peek() != "}":
            if not first:
                reader.take(",")
            first = False
            if reader.peek() != '"':
                raise reader.error("Expecting property name enclosed in double quotes")
            key = reader.value()
            reader.take(":")
            if key == CHANGES and reader.peek() == "{":
                return _read_changes(reader, changes_from)
            reader.value()
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"manifest.json is not valid JSON: {exc}") from None
    return None


def _read_changes(reader: _JsonReader, changes_from: int | None = None) -> dict[str, Any]:
    """The `changes` section, its items checked one at a time (`exporters.archive.changes`).

    Why they are kept only while few: an export that renamed most files lists a
    change per item, and a large account's list, parsed whole, would cost what
    the files list would (see `read_manifest`). Up to `KEPT_CHANGES` items are
    kept as `items`; past that only `count` and `summary` are, with
    `items_elided` true (the items stay in manifest.json for anyone who reads it).

    With `changes_from`, the items from that index on (up to `KEPT_CHANGES`) are
    kept as `items`, and `items_from` says where they start; every item is still
    checked. Such a section is never the whole list, so `items_elided` is true
    even when the window holds every item: it must not be written back.
    """
    section: dict[str, Any] = {}
    kept: list[Any] = []
    start = 0 if changes_from is None else changes_from
    listed = None
    reader.take("{")
    while reader.peek() != "}":
        if section or listed is not None:
            reader.take(",")
        if reader.peek() != '"':
            raise reader.error("Expecting property name enclosed in double quotes")
        key = reader.value()
        reader.take(":")
        if key == "items" and reader.peek() == "[":
            _require(listed is None, "changes has two items lists")
            listed = 0
            reader.take("[")
            while reader.peek() != "]":
                if listed:
                    reader.take(",")
                entry = reader.value()
                try:
                    check_change(entry, listed)
                except ValueError as exc:
                    _require(False, str(exc))
                if start <= listed < start + KEPT_CHANGES:
                    kept.append(entry)
                listed += 1
            reader.take("]")
        else:
            section[key] = reader.value()
    reader.take("}")
    try:
        check_section(section, listed)
    except ValueError as exc:
        _require(False, str(exc))
    if changes_from is not None:
        return {**section, "items": kept, "items_from": changes_from, "items_elided": True}
    if (listed or 0) <= KEPT_CHANGES:
        return {**section, "items": kept}
    return {**section, "items_elided": True}


class _JsonReader:
    """One JSON text read from UTF-8 pieces, a value at a time (`json` decodes each value).

    The buffer holds what is not yet consumed; when a value runs past its end,
    at least as much again is read, so a value of any size costs linear time.
    Why not ijson: the one-pass ijson reader this needs took 1.28x the CPU at the
    same memory (docs/performance.md, "Manifest parser"; bench/zip_libraries.py).
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._decode = codecs.getincrementaldecoder("utf-8")("strict").decode
        self._decoder = json.JSONDecoder()
        self._text = ""
        self._at = 0
        self._dropped = 0  # characters consumed and let go, for error positions
        self._ended = False

    def _more(self) -> bool:
        """Read more text after the unconsumed rest; False at the end of the input."""
        if self._ended:
            return False
        self._dropped += self._at
        parts = [self._text[self._at :]]
        self._at = 0
        wanted, got = max(_READ_AHEAD, len(parts[0])), 0
        while got < wanted:
            chunk = next(self._chunks, None)
            if chunk is None:
                parts.append(self._decode(b"", True))
                self._ended = True
                break
            parts.append(self._decode(chunk))
            got += len(chunk)
        self._text = "".join(parts)
        return True

    def peek(self) -> str:
        """The next character that is not JSON whitespace, not consumed; "" at the end."""
        while True:
            self._at = _WHITESPACE.match(self._text, self._at).end()  # type: ignore[union-attr]  # `*`: always matches
            if self._at < len(self._text):
                return self._text[self._at]
            if not self._more():
                return ""

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"Expecting {char!r} delimiter" if char in ",:" else f"Expecting {char!r}")
        self._at += 1

    def value(self) -> Any:
        """Decode the next value; a number or word at the buffer's end waits for more text."""
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._at)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                raise self.error(exc.msg, exc.pos) from None
            if end == len(self._text) and self._more():
                continue
            self._at = end
            return value

    def rest(self) -> str:
        """Everything not yet consumed (to let `json.loads` describe a text that is no object)."""
        while self._more():
            pass
        return self._text[self._at :]

    def end(self) -> None:
        if self.peek() != "":
            raise self.error("Extra data")

    def error(self, message: str, at: int | None = None) -> ArchiveError:
        at = self._at if at is None else at
        return ArchiveError(f"manifest.json is not valid JSON: {message} (character {self._dropped + at})")


def checksums_chunks(files: Iterable[ManifestFile]) -> Iterator[bytes]:
    """`SHA256SUMS` for `files` in pieces, as `sha256sum` writes it (paths never need its escaping)."""
    lines: list[str] = []
    for f in files:
        if f.path not in (CHECKSUMS_NAME, MANIFEST_NAME):
            lines.append(f"{f.sha256}  {f.path}\n")
            if len(lines) >= _BATCH:
                yield "".join(lines).encode("utf-8")
                lines.clear()
    if lines:
        yield "".join(lines).encode("utf-8")


def checksums_text(files: Iterable[ManifestFile]) -> bytes:
    """`SHA256SUMS` for `files`, as `sha256sum` writes it."""
    return b"".join(checksums_chunks(files))
