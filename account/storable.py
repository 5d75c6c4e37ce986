"""What the store accepts, the same on every database: the last check before any write.

Why a check of its own beside the importer: SQLite stores what PostgreSQL
refuses (U+0000 in `text`, a value longer than its `VARCHAR(n)`, a unique key
too large for a B-tree entry), so the same account used to import on one
backend and crash with a raw `DataError` on the other. Every path into the
store (`import-account`, `restore`, the demo, tests) goes through
`store.replace`, which calls `prepare_record` here on each record, so the rule
holds whatever produced the records: an archive restored from an older
version, a hand-edited note, a future API. The importer applies the same
rules earlier, with the JSON paths of the file (`account.jsonio`).

Paths are those of the account JSON format (`$.calendars[0].color`), so the
importer and a restore name a problem the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

from account import canonical
from account.records import Account, Calendar
from errors import InvalidInput

# Column widths that PostgreSQL enforces and SQLite ignores: `VARCHAR(n)` counts
# characters. Keyed by record class and field; `store` declares the same widths
# (tests/unit/test_storable.py keeps the two in step).
CHAR_LIMITS: dict[str, int] = {
    "Account.email": 320,
    "Account.display_name": 500,
    "Account.timezone": 64,
    "CalendarInfo.color": 64,
    "Blob.media_type": 255,
    "Attachment.media_type": 255,
    "Contact.extra.name": 255,
    "Contact.birthday": 10,
    "Contact.anniversary": 10,
    "When.tz": 64,
    "Event.status": 16,
    "Event.transparency": 16,
    "Override.status": 32,
    "Attendee.role": 64,
    "Attendee.partstat": 64,
    "Alarm.trigger": 64,
    "Alarm.action": 16,
}
# Values under a unique constraint. A PostgreSQL B-tree entry must fit in a third of
# a page (2,704 bytes, after compression, so the real limit depends on the text);
# 1,000 UTF-8 bytes always fits and is far more than any real UID or name needs.
KEY_BYTES = 1000
KEYS = frozenset({"Contact.uid", "Event.uid", "Note.id", "CalendarInfo.name"})


def prepare(account: Account) -> tuple[Account, list[str]]:
    """Apply the NUL rule to every string and refuse what some database could not hold.

    Returns the account with U+0000 replaced by U+FFFD everywhere (the rule of
    `account.canonical.NUL_REPLACEMENT`) and the paths where that happened.
    Raises `InvalidInput` naming every value that is too long, so no backend
    ever sees a value another backend would take.
    """
    problems = limit_problems(account)
    if problems:
        raise InvalidInput(f"The account has {len(problems)} value(s) too long to store", problems)
    replaced: list[str] = []
    clean = _replace_nul(account, "$", replaced)
    return clean, replaced


R = TypeVar("R")


def prepare_record(record: R, path: str) -> tuple[R, list[str], list[tuple[str, str]]]:
    """`prepare` for one record of a stream (a contact, a calendar's info, an event, a note).

    Returns the record with the NUL rule applied, the paths where it was, and the
    problems `limit_problems` would report for it; `path` is where the record sits
    in the account JSON (`$.calendars[0].events[3]`; `$.calendars[0]` for a
    calendar's info), so problems read as they do for a whole account.
    Why it returns problems instead of raising: a writer streaming records reports
    every problem of the stream at once, as `prepare` does for an account.
    """
    if _fits(record, ""):
        return record, [], []
    problems = _limit_problems(record, path)
    if problems:
        return record, [], problems
    replaced: list[str] = []
    clean = _replace_nul(record, path, replaced)
    return clean, replaced, []


def _fits(value: Any, key: str) -> bool:
    """True when `prepare_record` would change and report nothing: the common case, checked fast.

    Why a second walk beside `strings`: that one builds a JSON path for every
    string; a restore checks every record of the account, and on a 0.1x HEAVY
    archive the two walks took a fifth of the time (cProfile). This one builds
    no paths and asks `dataclasses.fields` once per class; only a record that
    fails it takes the full walk, which names the paths. It tests the exact
    type of the frequent values (str, tuple, a record class) before the
    `isinstance` chain (`Mapping` is an ABC, slow to test) and loops without
    generators: that halved its cost again (cProfile, 0.1x HEAVY restore).
    """
    kind: Any = type(value)  # Any: mypy does not take type[Any] as the cache's Hashable key
    if kind is str:
        return _str_fits(value, key)
    if kind is tuple:
        for item in value:  # noqa: SIM110  (a generator per tuple costs more than the check)
            if not _fits(item, key):
                return False
        return True
    record = _record_fields(kind)
    if record is not None:
        for name, field_key in record:  # noqa: SIM110  (as above)
            if not _fits(getattr(value, name), field_key):
                return False
        return True
    if isinstance(value, str):
        return _str_fits(value, key)
    if isinstance(value, tuple):
        return all(_fits(item, key) for item in value)
    if isinstance(value, Mapping):
        return all(_fits(name, f"{key}.name") and _fits(item, key) for name, item in value.items())
    if is_dataclass(value) and not isinstance(value, type):
        return all(_fits(getattr(value, name), field_key) for name, field_key in _fields_of(type(value)))
    return True


def _str_fits(value: str, key: str) -> bool:
    if _NUL in value:
        return False
    limit = CHAR_LIMITS.get(key)
    if limit is not None and len(value) > limit:
        return False
    # At most 4 UTF-8 bytes per character: a short value needs no encoding to know it fits.
    return not (key in KEYS and len(value) * 4 > KEY_BYTES and len(value.encode("utf-8", "surrogatepass")) > KEY_BYTES)


_NUL = canonical.NUL


@functools.cache
def _record_fields(kind: type[Any]) -> tuple[tuple[str, str], ...] | None:
    """`_fields_of` for a dataclass that `_fits` checks field by field (not a str, tuple or Mapping); else None."""
    if not is_dataclass(kind) or issubclass(kind, (str, tuple, Mapping)):
        return None
    return _fields_of(kind)


@functools.cache
def _fields_of(cls: type[Any]) -> tuple[tuple[str, str], ...]:
    """A dataclass's field names, each with its `Class.field` key."""
    return tuple((field.name, f"{cls.__name__}.{field.name}") for field in fields(cls))


def limit_problems(account: Account) -> list[tuple[str, str]]:
    """`(path, message)` for every value longer than the store can hold on every backend."""
    return _limit_problems(account, "$")


def _limit_problems(record: Any, at: str) -> list[tuple[str, str]]:
    problems = []
    for path, key, value in strings(record, at):
        limit = CHAR_LIMITS.get(key)
        if limit is not None and len(value) > limit:
            problems.append((path, f"is {len(value)} characters long; at most {limit} can be stored"))
        if key in KEYS and len(value.encode("utf-8", "surrogatepass")) > KEY_BYTES:
            size = len(value.encode("utf-8", "surrogatepass"))
            problems.append((path, f"is {size} bytes long in UTF-8; an identifier may have at most {KEY_BYTES}"))
    return problems


def strings(value: Any, path: str = "$", key: str = "") -> Iterator[tuple[str, str, str]]:
    """Every string in a record tree as `(json_path, "Class.field", value)`.

    A mapping (a contact's `extra`) yields each name under `Class.field.name`
    and each value under `Class.field`.
    """
    if isinstance(value, str):
        yield path, key, value
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from strings(item, f"{path}[{i}]", key)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from strings(name, f"{path}.{name}", f"{key}.name")
            yield from strings(item, f"{path}.{name}", key)
    elif is_dataclass(value) and not isinstance(value, type):
        for field in fields(value):
            yield from strings(getattr(value, field.name), _child(value, path, field.name), _key(value, field.name))


def _key(owner: Any, name: str) -> str:
    return f"{type(owner).__name__}.{name}"


def _child(owner: Any, path: str, name: str) -> str:
    # The JSON format has a calendar's name, colour and description beside its events.
    return path if isinstance(owner, Calendar) and name == "info" else f"{path}.{name}"


def _replace_nul(value: Any, path: str, replaced: list[str]) -> Any:
    """`value` with the NUL rule applied to every string; unchanged parts are the same objects."""
    if isinstance(value, str):
        if canonical.NUL in value:
            replaced.append(path)
            return canonical.replace_nul(value)
        return value
    if isinstance(value, tuple):
        items = tuple(_replace_nul(item, f"{path}[{i}]", replaced) for i, item in enumerate(value))
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, Mapping):
        pairs = [
            (_replace_nul(name, f"{path}.{name}", replaced), _replace_nul(item, f"{path}.{name}", replaced))
            for name, item in value.items()
        ]
        changed = any(a is not name or b is not item for (a, b), (name, item) in zip(pairs, value.items(), strict=True))
        return dict(pairs) if changed else value
    if is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in fields(value):
            old = getattr(value, field.name)
            new = _replace_nul(old, _child(value, path, field.name), replaced)
            if new is not old:
                changes[field.name] = new
        return replace(value, **changes) if changes else value
    return value
