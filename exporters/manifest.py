"""The archive's `manifest.json` and `SHA256SUMS`: what is inside and how to check it.

Why a manifest with a hash per file: a backup is only worth something if its
owner can prove, years later and without Lifeboat, that nothing is missing or
damaged. The manifest lists every file with its SHA-256 and size and carries a
format version so future readers know what they are looking at; `SHA256SUMS`
says the same in the format `sha256sum -c` and `shasum -a 256 -c` read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporters.paths import collision_key, unsafe_path_reason

FORMAT = "lifeboat-archive"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MANIFEST_NAME = "manifest.json"
README_NAME = "README.txt"
CHECKSUMS_NAME = "SHA256SUMS"
RESERVED_NAMES = frozenset({MANIFEST_NAME, README_NAME, CHECKSUMS_NAME})
GENERATOR = "Lifeboat"
# Keys the archive writer owns; everything else in manifest.json is the caller's meta.
_FORMAT_KEYS = ("format", "format_version", "generator", "created_at", "files")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class ArchiveError(ValueError):
    """An archive that cannot be written, or that fails verification; the message says why."""


@dataclass(frozen=True)
class ManifestFile:
    path: str
    sha256: str  # lower-case hex
    size: int


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` says: format, time, the caller's meta, and every file."""

    created_at: dt.datetime  # aware UTC
    files: tuple[ManifestFile, ...]
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
        document: dict[str, Any] = {
            "format": FORMAT,
            "format_version": self.format_version,
            "generator": self.generator,
            "created_at": format_utc(self.created_at),
            **dict(self.meta),
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


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


def _file_entry(raw: Any, index: int) -> ManifestFile:
    _require(isinstance(raw, dict), f"files[{index}] is not an object")
    path, sha, size = raw.get("path"), raw.get("sha256"), raw.get("size")
    _require(isinstance(path, str), f"files[{index}] has no path")
    reason = unsafe_path_reason(path)
    _require(reason is None, f"file {path!r} has an unsafe path: {reason}")
    _require(isinstance(sha, str) and bool(_SHA256.match(sha)), f"file {path!r} has no valid sha256")
    _require(type(size) is int and size >= 0, f"file {path!r} has no valid size")
    return ManifestFile(path=path, sha256=sha, size=size)


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check `manifest.json`, raising `ArchiveError` that says what is wrong."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"manifest.json is not valid JSON: {exc}") from None
    _require(isinstance(document, dict), "is not a JSON object")
    _require(document.get("format") == FORMAT, f"format is {document.get('format')!r}, not {FORMAT!r}")
    version = document.get("format_version")
    _require(
        version in SUPPORTED_VERSIONS,
        f"format_version {version!r} is not one this Lifeboat understands "
        f"({', '.join(map(str, sorted(SUPPORTED_VERSIONS)))}); use a newer Lifeboat",
    )
    try:
        created_at = dt.datetime.fromisoformat(document.get("created_at"))
    except (TypeError, ValueError):
        raise ArchiveError("manifest.json: created_at is not an ISO 8601 time") from None
    _require(created_at.tzinfo is not None, "created_at has no time zone")
    raw_files = document.get("files")
    _require(isinstance(raw_files, list), "has no files list")
    files = tuple(_file_entry(raw, i) for i, raw in enumerate(raw_files))
    seen: set[str] = set()
    for entry in files:
        key = collision_key(entry.path)
        _require(key not in seen, f"lists {entry.path!r} twice (or twice in different case)")
        seen.add(key)
    _require(isinstance(document.get("counts", {}), dict), "counts is not an object")
    return Manifest(
        created_at=created_at.astimezone(dt.UTC),
        files=files,
        meta={k: v for k, v in document.items() if k not in _FORMAT_KEYS},
        generator=str(document.get("generator", "")),
        format_version=version,
    )


def checksums_text(files: tuple[ManifestFile, ...] | list[ManifestFile]) -> bytes:
    """`SHA256SUMS` for `files`, as `sha256sum` writes it (paths never need its escaping)."""
    lines = [f"{f.sha256}  {f.path}\n" for f in files if f.path not in (CHECKSUMS_NAME, MANIFEST_NAME)]
    return "".join(lines).encode("utf-8")
