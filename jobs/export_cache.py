"""The per-user item cache of repeat exports: one small SQLite file per user, on local disk.

What it is for: `exporters.archive.reuse` (the bytes an export wrote per item,
keyed by content version, options and writer fingerprint). It is an
optimisation only, so every failure here turns into a miss, never a failed
export: a damaged entry (its checksum does not match) is deleted and the item is
serialised again; a damaged, locked or missing file disables the cache for the
run; the folder may be deleted at any time.

Why SQLite rather than a file per item: a heavy account has 65,000 items, and
one file each costs an inode, a directory entry and an open/read/close per
item, where SQLite answers 500 keys in one statement from one file and writes
them in one transaction; no half-written entry survives a crash.

Why bounded by "what a recent run used", and pruned now and then: a pruning run
notes the keys it read or wrote (in a small table of its own: marking the items
in place would rewrite every row with its blob), and when it completes it
deletes the rest (but an entry whose group it used: an event whose whole run was
read; the bundle also notes such a run's events, `touch`, since an event's group
names only the last run it joined and an edit undone reads an earlier run
again). A run prunes only once the entries hold `PRUNE_SLACK` times the bytes
the last prune kept (or when no prune ever ran), the way backup tools prune now
and then rather than on every backup, so the entries hold at most about 1.25
exports' worth of bytes (the plain items plus the contacts' compressed segments)
and never grow with history. Bytes, not entries: a 1 % edit of the events
changes 1 % of the event entries but ~16 % of the runs, which hold ~16 events'
bytes each, so counting entries let the bytes reach 2.2x before a prune (a trial
of 1 % edits at 900 contacts, 6,000 events and 900 notes). Each run adds what it
wrote to the "bytes" meta row, and a prune sets it exactly. Noting 65,000 used
keys and the prune's scan cost a 1x HEAVY repeat export ~7 % of its time (py-
spy). `MAX_BYTES` caps the file for an account too big to be worth caching: past
it, nothing new is added. A first export (the file empty when it opened) keeps
no such list and prunes nothing: everything in the file is its own (replaying a
typical first export's 1,438 cache calls: 32.9 vs 39.9 ms CPU, medians of 9
interleaved runs, min 19.7 vs 23.9).

Two exports of one user at once (a scheduled run and `lifeboat export`) share
the list of used keys: it is emptied by the prune that read it, not when a run
opens the file, and a run skips its prune when another pruned meanwhile.

Never shared between users: the file lives in `<folder>/<user id>/`, and the
cache object is made for one user's export.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import operator
import os
import shutil
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from exporters.archive.reuse import writer_fingerprint

log = logging.getLogger("lifeboat.export_cache")  # under "lifeboat": the JSON log lines

FILENAME = "items.sqlite3"
MAX_BYTES = 4 * 1024**3
# A flush writes this many entries (or this many bytes of them, whichever comes first) in one
# transaction, each list sorted by key. Why: the keys are digests, so a batch of random keys touches a
# leaf of the key index per entry, and each transaction copies every page it touches to the journal
# first. Filling the cache of a 1x HEAVY first export (68,171 entries, 88 MB, replayed from its file,
# `bench/cache_fill.py`): 0.64x the CPU of batches of 500 in arrival order (0.56-0.68, 5 interleaved rounds);
# the bigger batches are most of it, the key order the rest. The pending entries hold at most 8 MiB.
WRITE_BATCH = 5000
WRITE_BYTES = 8 * 1024**2
# A run prunes when the file holds this many times the bytes the last prune kept.
PRUNE_SLACK = 1.25
SCHEMA_VERSION = 3
_SCHEMA = (
    # grp: the key of an entry holding this one's bytes too (an event's run): kept while either is used.
    # It comes before the blob so that a prune reads it without walking the blob's overflow pages.
    "CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, grp TEXT, checksum BLOB NOT NULL, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS touched (key TEXT PRIMARY KEY) WITHOUT ROWID",  # keys a pruning run used
    # "writers": the exporters' fingerprint the entries were written with (`_writers_stamp`);
    # "kept_bytes": the entries' bytes the last prune kept; "bytes": what they are now (each run adds what it
    # wrote); "prunes": 1 while the run that opened the file prunes; "pruned": how many prunes ran.
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
)


_first, _second = operator.itemgetter(0), operator.itemgetter(1)  # stable: a key put twice keeps its order


def _checksum(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def _writers_stamp() -> int:
    """The exporters' fingerprint as a number for the meta table (its first 60 bits).

    Why the file keeps it: after an upgrade that changed a writer, every entry is
    keyed under the old fingerprint and can never be read again. Emptied at once,
    the file frees its space and the export knows it is a first one (so a big one
    is split over two processes, `jobs.export.processes_for`) instead of finding
    a full cache that serves nothing.
    """
    return int(writer_fingerprint()[:15], 16)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _locked(exc: BaseException) -> bool:
    """Whether `exc` says another connection holds the file (busy past the timeout), not that it is damaged."""
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


class ItemCacheFile:
    """`exporters.archive.reuse.ItemCache` in `<folder>/<user_id>/items.sqlite3`; use as a context manager.

    `commit()` after a successful export keeps what this run used and drops the
    rest; leaving without it keeps what was written (still valid entries) and
    drops nothing.
    """

    def __init__(self, folder: Path, user_id: int, *, max_bytes: int = MAX_BYTES, joins: bool = False) -> None:
        """`joins`: this is the second process of an export whose first opened the file (`jobs.export_split`):
        what it uses counts for that run, so the first's list of used keys is kept, and the first commits."""
        self.user_id = int(user_id)
        self.path = Path(folder) / str(self.user_id) / FILENAME
        self.max_bytes = max_bytes
        self.joins = joins
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, str | None, bytes, bytes]] = []
        self._used: list[str] = []
        self._regrouped: list[tuple[str, str]] = []
        self._pending_bytes = 0
        self.discarded = 0  # damaged entries found and dropped (tests and logs)
        self._full = False
        self._fresh = False  # empty when opened by the run's first process: nothing to prune
        self._pruned = 0  # prunes of the file before this run opened it (meta "pruned")
        self.prunes = False  # this run notes what it uses and, at commit, drops the rest

    def __enter__(self) -> ItemCacheFile:
        try:
            self._open()
        except (sqlite3.Error, OSError) as exc:
            self._give_up("cannot be opened", exc, remove=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The user's own cards and events: readable by the service's account only (SQLite gives
        # its journal the file's mode), as the archives are.
        handle = os.open(self.path, os.O_CREAT | os.O_RDONLY, 0o600)
        try:
            os.fchmod(handle, 0o600)  # a file an earlier version made with the umask's mode too
        finally:
            os.close(handle)
        db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        self._db = db
        # No fsync: a cache lost or torn by a power cut costs a slower export, and a damaged
        # file or entry is noticed (errors, checksums) and dropped. The rollback journal
        # still keeps a crashed process's half-written batch out.
        db.execute("PRAGMA synchronous=OFF")
        writers = _writers_stamp()
        stale = db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION  # new, or another layout
        if not stale and not self.joins:
            stale = _has_table(db, "meta") and self._meta(db, "writers") not in (None, writers)
        if stale:
            for table in ("items", "touched", "meta"):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        for statement in _SCHEMA:
            db.execute(statement)
        if not self.joins:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('writers', ?)", (writers,))
        if self.joins:  # the first process decided
            self.prunes = bool(self._meta(db, "prunes"))
        else:
            # The list of used keys is emptied by the prune that read it, not here: another export of
            # this user may be under way and noting what it uses (and a failed run's notes only keep
            # a little more at the next prune). "pruned" tells a run whether one pruned since it opened.
            self._pruned = self._meta(db, "pruned") or 0
            kept, held = self._meta(db, "kept_bytes"), self._meta(db, "bytes")
            self._fresh = db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None
            self.prunes = not self._fresh and (kept is None or held is None or held >= kept * PRUNE_SLACK)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('prunes', ?)", (int(self.prunes),))
        pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        self._full = pages >= self.max_bytes

    @staticmethod
    def _meta(db: sqlite3.Connection, name: str) -> int | None:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def _give_up(self, what: str, exc: BaseException, *, remove: bool = False) -> None:
        """Stop using the cache for this run (and remove a file that cannot be read, but not a locked one)."""
        log.warning(
            "export cache %s %s (%s); exporting without it", self.path, what, exc, extra={"user_id": self.user_id}
        )
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        if remove and not _locked(exc):  # locked is not damaged: the next run may use it again
            folder = self.path.parent  # `<folder>/<user id>`: the cache's own, whatever is there
            with contextlib.suppress(OSError):
                if folder.is_dir() and not folder.is_symlink():
                    shutil.rmtree(folder)
                else:  # a file (or link) where the folder belongs: mkdir fails on it in every run
                    folder.unlink()

    def holds_entries(self) -> bool:
        """Whether an earlier export left anything here (a repeat export then reuses most of its items)."""
        if self._db is None:
            return False
        try:
            return self._db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None
        except sqlite3.Error as exc:
            self._give_up("cannot be read", exc, remove=True)
            return False

    def get_many(self, keys: Sequence[str]) -> Mapping[str, bytes]:
        if self._db is None or not keys:
            return {}
        found: dict[str, bytes] = {}
        damaged: list[str] = []
        try:  # the keys as one JSON parameter: one statement per batch, whatever its length
            rows = self._db.execute(
                "SELECT key, value, checksum FROM items WHERE key IN (SELECT value FROM json_each(?))",
                (json.dumps(keys),),
            )
            for key, value, checksum in rows:
                if _checksum(value) == checksum:
                    found[key] = value
                else:
                    damaged.append(key)
            if damaged:
                self.discarded += len(damaged)
                log.warning(
                    "export cache %s: %d damaged entries dropped",
                    self.path,
                    len(damaged),
                    extra={"user_id": self.user_id},
                )
                self._db.executemany("DELETE FROM items WHERE key = ?", [(k,) for k in damaged])
        except sqlite3.Error as exc:
            self._give_up("cannot be read", exc, remove=True)
            return {}
        if not self.prunes:
            return found
        self._used.extend(found)
        if len(self._used) >= WRITE_BATCH:
            self._flush()
        return found

    def put(self, key: str, value: bytes, group: str = "") -> None:
        if self._db is None or self._full:
            return
        self._pending.append((key, group or None, _checksum(value), value))
        self._pending_bytes += len(value)
        if len(self._pending) >= WRITE_BATCH or self._pending_bytes >= WRITE_BYTES:
            self._flush()

    def regroup(self, keys: Sequence[str], group: str) -> None:
        if self._db is None:
            return
        self._regrouped.extend((group, key) for key in keys)
        if len(self._regrouped) >= WRITE_BATCH:
            self._flush()

    def touch(self, keys: Iterable[str]) -> None:
        """Note `keys` as used by this run without reading them (only a pruning run reads `keys`)."""
        if self._db is None or not self.prunes:
            return
        self._used.extend(keys)
        if len(self._used) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._db is None:
            return
        # In key order: each leaf page of the key index is visited once per batch (see WRITE_BATCH).
        pending, used = sorted(self._pending, key=_first), sorted(self._used)
        regrouped = sorted(self._regrouped, key=_second)
        self._pending, self._used, self._regrouped, self._pending_bytes = [], [], [], 0
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?)", pending)
            if pending:  # what the file holds now, roughly (a replaced entry counts twice): a prune makes it exact
                written = sum(len(value) for _, _, _, value in pending)
                self._db.execute("UPDATE meta SET value = value + ? WHERE name = 'bytes'", (written,))
            self._db.executemany("UPDATE items SET grp = ? WHERE key = ?", regrouped)
            if self.prunes:  # a run that does not prune needs no list (nor a first one: all is its own)
                touched = [(k,) for k, _, _, _ in pending] + [(k,) for k in used]
                self._db.executemany("INSERT OR IGNORE INTO touched VALUES (?)", touched)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._give_up("cannot be written", exc)

    def commit(self) -> None:
        """The export succeeded: keep what it used or wrote, drop every other entry."""
        self._flush()
        if self._db is None or self.joins:
            return
        try:
            # One write transaction: nobody notes a key between the prune and the emptying of the list.
            self._db.execute("BEGIN IMMEDIATE")
            if self.prunes and (self._meta(self._db, "pruned") or 0) != self._pruned:
                self._db.execute("COMMIT")  # another export pruned while this one ran: what it used since is kept
                return
            if self.prunes:
                self._db.execute(
                    "DELETE FROM items WHERE key NOT IN (SELECT key FROM touched)"
                    " AND (grp IS NULL OR grp NOT IN (SELECT key FROM touched))"
                )
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('pruned', ?)", (self._pruned + 1,))
            if self.prunes or self._fresh:  # what the next runs measure their growth against
                self._db.execute("DELETE FROM touched")
                kept = self._db.execute("SELECT coalesce(sum(length(value)), 0) FROM items").fetchone()[0]
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [("kept_bytes", kept), ("bytes", kept)]
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._give_up("cannot be pruned", exc)

    def close(self) -> None:
        if self._db is not None:
            self._flush()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def remove_idle_caches(folder: Path, *, idle_for: float, now: float) -> int:
    """Delete the caches of users who have not exported for `idle_for` seconds (by the file's mtime); how many.

    Why: each cache is bounded by one export's worth of bytes, but a user who
    stopped exporting (account closed, schedule off) would keep theirs for ever.
    Safe whenever it runs: a cache is only an optimisation and its folder may
    go at any time (an export then runs without it).
    """
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if not entry.name.isdigit() or not entry.is_dir():
            continue  # only `<user id>/` folders are the cache's
        stamps = [p.stat().st_mtime for p in entry.iterdir() if p.is_file()]
        if not stamps or now - max(stamps) > idle_for:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def remove_user_cache(folder: Path, user_id: int) -> bool:
    """Delete one user's cache (their next export serialises everything again); whether there was one.

    Why: entries are keyed by the store's content versions; once those were
    found wrong and mended (`store.version_check`), bytes cached under the old
    ones must not be copied into an archive again.
    """
    entry = folder / str(user_id)
    if not entry.is_dir():
        return False
    shutil.rmtree(entry, ignore_errors=True)
    return True
