"""Per-member records of one archive, kept in a temporary SQLite file instead of Python objects.

Why: an archive holds a file per contact and per note, some 150,000 for a large
account. Writing and verifying it needs a few facts per member (path, hash,
size, where it sits in the zip), and kept as Python objects (a `ZipInfo`, a
dict, a dataclass, their strings) those cost 1-2 KB each: hundreds of MB that
grow with the account. A private SQLite database keeps them on disk behind a
small fixed page cache, is deleted when closed, and takes rows in batches for
about a microsecond each. Nothing in it outlives the archive it describes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

BATCH = 1024
CACHE_KIB = 2048  # SQLite's page cache; rows beyond it live in the temporary file
_NAME = re.compile(r"[a-z_]+\Z")
_FILTER_BITS = 1 << 21  # 256 KiB per key set
_FILTER_MASK = _FILTER_BITS - 1


def _table_name(name: str) -> str:
    """Table names come from code, never from data; this makes sure of it before they go into SQL."""
    if not _NAME.match(name):
        raise ValueError(f"not a spool table name: {name!r}")
    return name


class Spool:
    """A private temporary database, one transaction, never committed, deleted when closed.

    It lives in `folder` (the caller's scratch folder, as a dot-file) or, without
    one, where SQLite puts its own private temporary databases (`connect("")`).
    """

    def __init__(self, schema: str, *, folder: Path | None = None) -> None:
        self._file: Path | None = None
        target = ""  # SQLite's private temporary on-disk database, removed when the connection closes
        if folder is not None:
            self._file = Path(folder) / f".spool-{secrets.token_hex(8)}.sqlite"
            target = os.fspath(self._file)
        # One user at a time, though perhaps not the thread that opened it (a reader handed on).
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if self._file is not None:
            # Unlinked once open (journals are off), as SQLite does with its own temporary
            # files: the connection keeps it, and a killed process leaves nothing to clean up.
            # Where open files cannot be unlinked (Windows), `close` removes it instead.
            with contextlib.suppress(OSError):
                self._file.unlink()
        self._db.execute("BEGIN")  # one transaction: no commit (and no file sync) per statement
        for statement in filter(str.strip, schema.split(";")):  # executescript would commit
            self._db.execute(statement)
        self._tables: list[SpoolTable] = []

    def table(self, name: str, width: int) -> SpoolTable:
        """A batched writer for rows of `width` values into the existing table `name`."""
        marks = ", ".join("?" * width)
        table = SpoolTable(self._db, f"INSERT INTO {_table_name(name)} VALUES ({marks})")  # noqa: S608 (checked name)
        self._tables.append(table)
        return table

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run `sql` once every batched row is in; iterate the cursor for results (lazily)."""
        for table in self._tables:
            table.flush()
        return self._db.execute(sql, params)

    def keys(self, name: str) -> SpoolKeys:
        """A string set in the table `name(key TEXT PRIMARY KEY)`, which this creates."""
        self._db.execute(f"CREATE TABLE {_table_name(name)} (key TEXT PRIMARY KEY) WITHOUT ROWID")
        return SpoolKeys(self._db, name)

    def first(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first row of `sql`, or None."""
        return self.execute(sql, params).fetchone()

    def close(self) -> None:
        self._db.close()
        if self._file is not None:
            self._file.unlink(missing_ok=True)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class SpoolTable:
    """Rows for one table, inserted `BATCH` at a time (`executemany` is ~5x cheaper per row)."""

    def __init__(self, db: sqlite3.Connection, insert: str) -> None:
        self._db = db
        self._insert = insert
        self._rows: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._db.executemany(self._insert, self._rows)
            self._rows.clear()


class SpoolKeys:
    """A set of strings in a spool table: `in` and `add`, like `set`.

    Recent keys wait in a small Python set and are written in batches. Most
    lookups are for new keys, so a fixed-size bit filter (two bits per key,
    by `hash()`) answers "not there" without a query; only keys that may be
    there (about 2% false hits at 150,000 keys) cost an indexed query.
    """

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self._db = db
        self._pending: set[str] = set()
        self._filter = bytearray(_FILTER_BITS // 8)
        name = _table_name(name)
        self._insert = f"INSERT OR IGNORE INTO {name} VALUES (?)"  # noqa: S608 (checked name)
        self._select = f"SELECT 1 FROM {name} WHERE key = ?"  # noqa: S608 (checked name)

    def __contains__(self, key: object) -> bool:
        h = hash(key)
        one, two = h & _FILTER_MASK, (h >> 32) & _FILTER_MASK
        if not (self._filter[one >> 3] >> (one & 7) & self._filter[two >> 3] >> (two & 7) & 1):
            return False
        if key in self._pending:
            return True
        return self._db.execute(self._select, (key,)).fetchone() is not None

    def add(self, key: str) -> None:
        h = hash(key)
        one, two = h & _FILTER_MASK, (h >> 32) & _FILTER_MASK
        self._filter[one >> 3] |= 1 << (one & 7)
        self._filter[two >> 3] |= 1 << (two & 7)
        self._pending.add(key)
        if len(self._pending) >= BATCH:
            self._db.executemany(self._insert, ((k,) for k in self._pending))
            self._pending.clear()


def iter_rows(cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    """Yield a cursor's rows in batches fetched from SQLite (fewer calls than row by row)."""
    while rows := cursor.fetchmany(BATCH):
        yield from rows


class SpillingKeys:
    """A set of strings (`in`, `add`) kept in memory while small, moved into a `Spool` past `limit`.

    Why: path bookkeeping (`PathAllocator`) needs every name it handed out,
    about 130 bytes each as a Python set; most uses are small and stay fast in
    memory, a large account's 150,000 names go to disk. The spool closes when
    this set is garbage collected.
    """

    def __init__(self, limit: int = 4 * BATCH, *, folder: Path | None = None) -> None:
        self._limit = limit
        self._folder = folder
        self._memory: set[str] = set()
        self._disk: SpoolKeys | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._memory if self._disk is None else key in self._disk

    def add(self, key: str) -> None:
        if self._disk is not None:
            self._disk.add(key)
            return
        self._memory.add(key)
        if len(self._memory) >= self._limit:
            spool = Spool("", folder=self._folder)
            weakref.finalize(self, spool.close)
            self._disk = spool.keys("keys")
            for known in self._memory:
                self._disk.add(known)
            self._memory = set()
