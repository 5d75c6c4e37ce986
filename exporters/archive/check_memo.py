"""What earlier checks found, kept between them: `verify` parses only items it has not verified before.

Why it is sound: each parser of `exporters.archive.check` is a deterministic
function of the bytes it reads. A verdict is kept under the SHA-256 of exactly
those bytes, with their context, and of a *stamp* naming what read them
(`stamp`: `CHECK_VERSION` of the checks and the installed versions of vobject,
icalendar, ical and PyYAML); the same bytes read by the same code give the same
verdict again. A key stands for

- "card": a vCard's text (one `BEGIN:VCARD` block): it parsed as one card with FN and UID;
- "note": a note file's bytes: its front matter parsed, with an id;
- "events": a calendar header (its VCALENDAR properties and VTIMEZONEs, the
  context events are parsed in) and one event group (a series with its
  RECURRENCE-ID overrides): both parsers read it, finding (events, changed occurrences).

Only what passed is kept, and only when the whole check passed: a check that
finds any problem writes nothing, so a key of an item that failed never enters.
An item whose bytes changed has another key and is parsed again.

Why the stamp is in every key and in the file: in the key, no verdict can ever
answer for other code; in the file, a memo of another stamp (after an upgrade)
is emptied when opened instead of holding rows nothing will ask for again.

Why the processes of one check read a snapshot: a check in two processes must
cut its calendar runs at the same events in both (`check._Steps`), so both must
see the same verdicts however other checks write meanwhile. The first process
copies the file (SQLite's backup: a consistent copy, ~1 MB per 15,000 keys)
beside it, both read that copy, and it is removed afterwards.

Why bounded by the keys of recent checks: every passing check stamps the keys it
used with its number (`seen`); when the file holds more than `KEEP_FACTOR` times
the last check's keys (and more than `KEEP_AT_LEAST`), the least recently seen
go, whole checks at a time. One memo serves an instance's `verify` of any
archive, so room for a few archives of the same size keeps a user's daily
archives warm while someone checks another one now and then; a row is ~60 bytes
on disk, so 4x a 1x HEAVY archive (~65,000 keys) is ~16 MB.

It is an optimisation only: a file that is damaged, unreadable or locked means
a check without it (one log line), never a failed or a wrong check, and the
folder may be deleted at any time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import logging
import os
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("lifeboat.check_memo")

FILENAME = "verdicts.sqlite3"
SCHEMA_VERSION = 1
PARSERS = ("vobject", "icalendar", "ical", "PyYAML")
KEEP_FACTOR = 4
KEEP_AT_LEAST = 100_000
LOOKUP_BATCH = 500
BUSY_TIMEOUT = 2.0  # seconds to wait for another check writing the memo before checking without it
_SNAPSHOT = ".snapshot-"
_SCHEMA = (
    # events, changed: what a calendar group holds (0, 0 for a card or a note); seen: the last check that used it.
    "CREATE TABLE IF NOT EXISTS verdicts (key BLOB PRIMARY KEY, events INTEGER NOT NULL, "
    "changed INTEGER NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID",
    # "stamp": what the verdicts were found with; "checks": how many passing checks wrote here.
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)

Verdict = tuple[int, int]  # (events, changed occurrences); (0, 0) for a card or a note


class MemoUnusable(Exception):
    """The memo could not be read in the middle of a check: the check starts again without it."""


def parser_versions() -> dict[str, str]:
    """The installed version of each parser the check uses."""
    versions = {}
    for name in PARSERS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "?"
    return versions


def stamp(check_version: int, **context: str) -> str:
    """What a verdict was found with: the checks' own version, the parsers' versions, and `context`."""
    parts = [f"check {check_version}", *(f"{k} {v}" for k, v in parser_versions().items())]
    parts += [f"{k} {v}" for k, v in sorted(context.items())]
    return "; ".join(parts)


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


class MemoFile:
    """The memo in `<folder>/verdicts.sqlite3`, opened by `open` for one check (in the first process)."""

    def __init__(self, folder: Path, stamp: str) -> None:
        self.path = Path(folder) / FILENAME
        self.stamp = stamp
        self.prefix = hashlib.sha256(stamp.encode("utf-8")).digest()  # in every key
        self._db: sqlite3.Connection | None = None

    @classmethod
    def open(cls, folder: Path, stamp: str) -> MemoFile | None:
        """The memo, emptied first if another stamp wrote it; None (and one log line) if it cannot be used."""
        memo = cls(folder, stamp)
        try:
            memo._open()
        except (sqlite3.Error, OSError) as exc:
            memo._give_up("cannot be opened", exc)
            return None
        return memo

    def _open(self) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _remove_stale_snapshots(folder)
        # Digests of users' cards and events: readable by the service's account only (the journal takes its mode).
        handle = os.open(self.path, os.O_CREAT | os.O_RDONLY, 0o600)
        try:
            os.fchmod(handle, 0o600)
        finally:
            os.close(handle)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        self._db = db
        db.execute("PRAGMA synchronous=OFF")  # a memo lost to a power cut costs one slower check
        ours = db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        if ours and self._meta("stamp") == self.stamp:
            return
        db.execute("BEGIN IMMEDIATE")
        for table in ("verdicts", "meta"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO meta VALUES ('stamp', ?)", (self.stamp,))
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")

    def _meta(self, name: str) -> str | None:
        assert self._db is not None
        has = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone() if has else None
        return None if row is None else str(row[0])

    def _give_up(self, what: str, exc: BaseException) -> None:
        """Check without the memo; remove a file that cannot be read (not a locked one: it is in use)."""
        log.warning("verify memo %s %s (%s); checking without it", self.path, what, exc)
        self.close()
        if not _locked(exc) and not isinstance(exc, OSError):
            with contextlib.suppress(OSError):
                self.path.unlink()

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def __enter__(self) -> MemoFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def usable(self) -> bool:
        return self._db is not None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Path | None]:
        """A private copy of the memo as it is now, for every process of one check; None if it cannot be made."""
        if self._db is None:
            yield None
            return
        copy = self.path.with_name(f"{_SNAPSHOT}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            handle = os.open(copy, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(handle)
            target = sqlite3.connect(copy)
            try:
                self._db.backup(target)
            finally:
                target.close()
        except (sqlite3.Error, OSError) as exc:
            copy.unlink(missing_ok=True)
            self._give_up("cannot be read", exc)
            yield None
            return
        try:
            yield copy
        finally:
            copy.unlink(missing_ok=True)

    def unusable(self, exc: BaseException) -> None:
        """The snapshot failed during the check (`MemoUnusable`): drop the file, check again without it."""
        self._give_up("cannot be read", exc)

    def record(self, new: Mapping[bytes, Verdict], seen: Iterable[bytes]) -> None:
        """After a check that passed: keep `new`, mark `seen` used, drop the least recently used beyond the bound."""
        if self._db is None:
            return
        db = self._db
        used = sorted(set(seen) - new.keys())  # in key order: neighbouring rows share pages
        try:
            db.execute("BEGIN IMMEDIATE")
            if self._meta("stamp") != self.stamp:  # another version emptied it meanwhile: its file now
                db.execute("ROLLBACK")
                return
            check = int(self._meta("checks") or 0) + 1
            db.execute("INSERT OR REPLACE INTO meta VALUES ('checks', ?)", (str(check),))
            db.executemany(
                "INSERT INTO verdicts VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET seen = excluded.seen",
                ((key, events, changed, check) for key, (events, changed) in sorted(new.items())),
            )
            db.executemany("UPDATE verdicts SET seen = ? WHERE key = ?", ((check, key) for key in used))
            keep = max(KEEP_FACTOR * (len(new) + len(used)), KEEP_AT_LEAST)
            if db.execute("SELECT count(*) FROM verdicts").fetchone()[0] > keep:
                db.execute(
                    "DELETE FROM verdicts WHERE seen < (SELECT seen FROM verdicts ORDER BY seen DESC LIMIT 1 OFFSET ?)",
                    (keep,),
                )
            db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._give_up("cannot be written", exc)

    def verdicts(self, source: Path | None) -> Verdicts:
        """What one process of this check looks up in `source` (None: nothing) and verifies."""
        return Verdicts(self.prefix, source)


def _remove_stale_snapshots(folder: Path, older_than: float = 86_400) -> None:
    """Snapshots a killed check left behind (a running check's are minutes old at most)."""
    now = time.time()
    for path in folder.glob(f"{_SNAPSHOT}*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > older_than:
                path.unlink()


class Verdicts:
    """One process's part of the memo during a check: lookups in a snapshot, and what it found out itself.

    `prefix` is the digest of the stamp (`MemoFile.prefix`); the second process
    is given it, so both make the same keys. `source` is the snapshot to look
    keys up in; None looks up nothing (`verify --fresh`: parse all, then record).
    """

    def __init__(self, prefix: bytes, source: Path | None) -> None:
        self.prefix = prefix
        self.source = source
        self._db: sqlite3.Connection | None = None
        self.new: dict[bytes, Verdict] = {}
        self.seen: list[bytes] = []
        self.parsed: Counter[str] = Counter()  # items parsed, by kind ("cards", "events", "notes")
        self.known: Counter[str] = Counter()  # items the memo vouched for, by kind

    @property
    def consults(self) -> bool:
        """Whether keys are looked up (else every item is parsed and only recorded)."""
        return self.source is not None

    def key(self, kind: str, digest: bytes) -> bytes:
        """The memo's key for `digest` (a SHA-256 of what a parser reads) of `kind`."""
        return hashlib.sha256(self.prefix + kind.encode("ascii") + b"\0" + digest).digest()

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, Verdict]:
        """The verdicts the snapshot holds for `keys`; `MemoUnusable` if it cannot be read."""
        if self.source is None or not keys:
            return {}
        found: dict[bytes, Verdict] = {}
        try:
            if self._db is None:
                uri = f"{self.source.resolve().as_uri()}?mode=ro&immutable=1"
                self._db = sqlite3.connect(uri, uri=True)
            for start in range(0, len(keys), LOOKUP_BATCH):
                batch = keys[start : start + LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(f"SELECT key, events, changed FROM verdicts WHERE key IN ({marks})", batch)  # noqa: S608  (only placeholders)
                for key, events, changed in rows:
                    found[bytes(key)] = (int(events), int(changed))
        except sqlite3.Error as exc:
            raise MemoUnusable(f"{self.source}: {exc}") from None
        return found

    def known_digests(self, kind: str, digests: Sequence[bytes]) -> set[bytes]:
        """Which `digests` of `kind` earlier checks verified (the caller counts the items in `known`)."""
        if not self.consults:
            return set()
        keys = {self.key(kind, d): d for d in digests}
        found = self.lookup(list(keys))
        self.seen += found
        return {keys[key] for key in found}

    def vouched(self, key: bytes, items: str, count: int) -> None:
        """The memo answered for `key`: `count` of `items` not parsed."""
        self.seen.append(key)
        self.known[items] += count

    def verified(self, key: bytes, items: str, count: int, verdict: Verdict = (0, 0)) -> None:
        """Parsed now and passed: `count` of `items`, to be kept under `key` if the whole check passes."""
        self.new[key] = verdict
        self.parsed[items] += count

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def to_json(self) -> dict[str, Any]:
        """For the second process's answer: keys as one base64 text each (~1.4 MB for 30,000 keys)."""
        return {
            "new": _pack(self.new),
            "verdicts": [n for verdict in self.new.values() for n in verdict],
            "seen": _pack(self.seen),
            "parsed": dict(self.parsed),
            "known": dict(self.known),
        }

    def add_json(self, data: Mapping[str, Any]) -> None:
        """Take in what another process of the same check found (`to_json`)."""
        numbers = data["verdicts"]
        for i, key in enumerate(_unpack(data["new"])):
            self.new[key] = (numbers[2 * i], numbers[2 * i + 1])
        self.seen += _unpack(data["seen"])
        self.parsed.update(data["parsed"])
        self.known.update(data["known"])


def _pack(keys: Iterable[bytes]) -> str:
    return base64.b64encode(b"".join(keys)).decode("ascii")


def _unpack(text: str) -> list[bytes]:
    data = base64.b64decode(text)
    return [data[i : i + 32] for i in range(0, len(data), 32)]
