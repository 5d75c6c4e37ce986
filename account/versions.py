"""Content versions of records, and the light item stubs a repeat export reads instead of records.

Why a digest of the record: a periodic export of an account that changed by 1 %
should redo 1 % of the work. The store keeps, per contact, event and note, the
SHA-256 of the record it was built from (`record_digest`); an export that already
produced bytes for that digest (and the same options) can reuse them without
loading the record. Equal digests mean equal records, which the store turns into
equal rows and back into equal records, so reused bytes are the bytes a full
export would write.

Why a hand-written walk rather than `repr` or JSON: `repr` of a 20 KiB photo or
attachment is a 60 KiB string built only to be hashed, and the JSON loader has no
writer; the walk feeds bytes straight into the hash, tagged by type and length so
that no two different records encode alike (`("a", "bc")` vs `("ab", "c")`,
`None` vs `""`, a date vs a string).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, NamedTuple

# Bump when the encoding below changes: every stored digest is then a different
# version from what a new import writes, so nothing is reused across the change.
DIGEST_VERSION = b"lifeboat-record-digest-1\n"


def record_digest(record: Any) -> str:
    """SHA-256 (hex) of a canonical encoding of a plain record (`account.records`)."""
    digest = hashlib.sha256(DIGEST_VERSION)
    _feed(digest.update, record)
    return digest.hexdigest()


def _feed(update: Any, value: Any) -> None:
    """Feed `value`'s encoding to `update`: the common exact types first, everything else by `_feed_any`.

    Why the fast path: a restore digests every record, and on a 0.1x HEAVY
    archive this walk, as one `isinstance` chain with `dataclasses.fields` per
    record, was the largest Python cost of staging (cProfile). Testing the
    exact type of the frequent values (str, None, tuple, a record class) and
    taking a record class's field names from a cache feeds the same bytes.
    """
    kind: Any = type(value)  # Any: mypy does not take type[Any] as the cache's Hashable key
    if kind is str:
        data = value.encode("utf-8", "surrogatepass")
        update(b"s%d:" % len(data))
        update(data)
    elif value is None:
        update(b"N")
    elif kind is tuple or kind is list:
        update(b"(%d:" % len(value))
        for item in value:
            _feed(update, item)
    else:
        record = _record_class(kind)
        if record is None:
            _feed_any(update, value)
            return
        header, names = record
        update(header)
        for name in names:
            _feed(update, getattr(value, name))


@functools.cache
def _record_class(kind: type[Any]) -> tuple[bytes, tuple[str, ...]] | None:
    """For a dataclass `_feed_any` would encode as one: its header and field names; otherwise None."""
    earlier = (bool, str, bytes, bytearray, memoryview, int, dt.date, tuple, list, Mapping)
    if not is_dataclass(kind) or issubclass(kind, earlier):
        return None
    name = kind.__name__.encode()
    return b"<%d:%s" % (len(name), name), tuple(spec.name for spec in fields(kind))


def _feed_any(update: Any, value: Any) -> None:
    """The encoding of every type `record_digest` takes (`_feed` takes the frequent ones the same way)."""
    if value is None:
        update(b"N")
    elif value is True or value is False:
        update(b"T" if value else b"F")
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        update(b"s%d:" % len(data))
        update(data)
    elif isinstance(value, bytes | bytearray | memoryview):
        update(b"b%d:" % len(value))
        update(value)
    elif isinstance(value, int):
        update(b"i%d;" % value)
    elif isinstance(value, dt.datetime):  # before date: a datetime is a date
        text = value.isoformat()
        tz = "" if value.tzinfo is None else str(value.utcoffset())
        _feed(update, f"dt{text}|{tz}")
    elif isinstance(value, dt.date):
        _feed(update, f"d{value.isoformat()}")
    elif isinstance(value, tuple | list):
        update(b"(%d:" % len(value))
        for item in value:
            _feed(update, item)
    elif isinstance(value, Mapping):
        update(b"{%d:" % len(value))
        for key, item in value.items():  # order matters: it is the order the writers emit
            _feed(update, key)
            _feed(update, item)
    elif is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__.encode()
        update(b"<%d:%s" % (len(name), name))
        for spec in fields(value):
            _feed(update, getattr(value, spec.name))
    else:
        raise TypeError(f"record_digest cannot encode {type(value).__name__}")


class ContactVersion(NamedTuple):
    """A contact as a repeat export first sees it: its key, content version and what names its file."""

    key: int
    digest: str | None  # None: no version known (rows from before versions): never reused
    uid: str
    formatted_name: str | None
    given: str | None
    family: str | None


class EventVersion(NamedTuple):
    key: int
    digest: str | None


class NoteVersion(NamedTuple):
    """A note's key, version and what places its files (title, notebook, attachment names)."""

    key: int
    digest: str | None
    title: str
    notebook: str | None
    attachments: tuple[str, ...]  # file names, in order
    id: str = ""  # the note's own id (`Note.id`): names it in the manifest's `changes`
