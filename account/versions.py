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

The encoding is defined once, by `_feed_any`. Digests are stored (migration
0010), so it must never change without a new `DIGEST_VERSION`;
tests/unit/test_record_versions.py holds golden digests and checks the fast
encoders (`_encoder`) against `_feed_any`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any, NamedTuple

# Bump when the encoding below changes: every stored digest is then a different
# version from what a new import writes, so nothing is reused across the change.
DIGEST_VERSION = b"lifeboat-record-digest-1\n"

Add = Callable[[Any], object]  # takes the encoding's parts in order: a hash's `update` or a list's `append`
Encoder = Callable[[Any, list[Any]], None]  # appends a value's parts to the list

# A part longer than this (an attachment of up to 64 MiB, a long note) is hashed where it is rather
# than copied into the joined encoding (`_long`, `_sha256`).
JOIN_LIMIT = 1 << 16
# The tag-and-length headers of short strings and bytes and of small tuples, made once: formatting one
# (`b"s%d:" % n`, ~100 ns) cost more than encoding the string (~60 ns).
SHORT = 256
_STR_HEADS = tuple(b"s%d:" % n for n in range(SHORT))
_BYTES_HEADS = tuple(b"b%d:" % n for n in range(SHORT))
_TUPLE_HEADS = tuple(b"(%d:" % n for n in range(SHORT))


def record_digest(record: Any) -> str:
    """SHA-256 (hex) of a canonical encoding of a plain record (`account.records`).

    The parts come from the record class's encoder (`_encoder`), which encodes
    text as strict UTF-8: a string with a lone surrogate (never in canonical
    form, but taken by `_feed_any` as `surrogatepass` UTF-8) makes it raise,
    and that record is then encoded by `_feed_any` itself.
    """
    kind: Any = type(record)  # Any: mypy does not take type[Any] as the caches' Hashable key
    parts: list[Any] = [DIGEST_VERSION]
    try:
        _encoder(kind)(record, parts)
    except UnicodeEncodeError:
        parts = [DIGEST_VERSION]
        _feed_any(parts.append, record)
    return _sha256(parts)


def _sha256(parts: list[Any]) -> str:
    """The hash (hex) of `parts` in order: joined into one buffer, or one by one when a None marks a large part."""
    try:
        return hashlib.sha256(b"".join(parts)).hexdigest()
    except TypeError:  # a None (`_long`): join refuses it before it copies anything
        digest = hashlib.sha256()
        for part in parts:
            if part is not None:
                digest.update(part)
        return digest.hexdigest()


def _long(parts: list[Any], head: bytes, data: bytes) -> None:
    """Add the header (`head` % length) and data of a string or bytes of `SHORT` bytes or more.

    Data over `JOIN_LIMIT` is preceded by a None, which tells `_sha256` to hash
    the parts one by one instead of copying them all into one buffer.
    """
    if len(data) > JOIN_LIMIT:
        parts.append(None)
    parts.append(head % len(data))
    parts.append(data)


def _feed_any(update: Add, value: Any) -> None:
    """The encoding of every type `record_digest` takes: the specification the encoders of `_encoder` follow."""
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
        _feed_any(update, _datetime_text(value))
    elif isinstance(value, dt.date):
        _feed_any(update, _date_text(value))
    elif isinstance(value, tuple | list):
        update(b"(%d:" % len(value))
        for item in value:
            _feed_any(update, item)
    elif isinstance(value, Mapping):
        update(b"{%d:" % len(value))
        for key, item in value.items():  # order matters: it is the order the writers emit
            _feed_any(update, key)
            _feed_any(update, item)
    elif is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__.encode()
        update(b"<%d:%s" % (len(name), name))
        for spec in fields(value):
            _feed_any(update, getattr(value, spec.name))
    else:
        raise TypeError(f"record_digest cannot encode {type(value).__name__}")


def _datetime_text(value: dt.datetime) -> str:
    """The text a datetime is encoded as: ISO 8601 and its UTC offset, empty when naive."""
    tz = "" if value.tzinfo is None else str(value.utcoffset())
    return f"dt{value.isoformat()}|{tz}"


def _date_text(value: dt.date) -> str:
    return f"d{value.isoformat()}"


# The offset text of canonical (UTC) datetimes, as `_datetime_text` writes it.
_UTC_OFFSET = str(dt.UTC.utcoffset(None))


def _datetime_part(value: dt.datetime) -> bytes:
    """`_feed_any`'s encoding of a datetime (a short string), in one part.

    Why not `_datetime_text` alone: a canonical aware datetime is UTC, and
    asking its offset again (`utcoffset`, `str`) took a third of the ~1.8 us its
    text cost; `dt.UTC`'s offset is always `_UTC_OFFSET`.
    """
    zone = value.tzinfo
    if zone is None:
        data = f"dt{value.isoformat()}|".encode()
    elif zone is dt.UTC:
        data = f"dt{value.isoformat()}|{_UTC_OFFSET}".encode()
    else:
        data = _datetime_text(value).encode()
    return _STR_HEADS[len(data)] + data  # at most ~70 bytes


def _date_part(value: dt.date) -> bytes:
    """`_feed_any`'s encoding of a date (a short string), in one part."""
    data = _date_text(value).encode()
    return _STR_HEADS[len(data)] + data


@functools.cache
def _record_class(kind: type[Any]) -> tuple[bytes, tuple[str, ...]] | None:
    """For a dataclass `_feed_any` would encode as one: its header and field names; otherwise None."""
    earlier = (bool, str, bytes, bytearray, memoryview, int, dt.date, tuple, list, Mapping)
    if not is_dataclass(kind) or issubclass(kind, earlier):
        return None
    name = kind.__name__.encode()
    return b"<%d:%s" % (len(name), name), tuple(spec.name for spec in fields(kind))


@functools.cache
def _encoder(kind: Any) -> Encoder:
    """How to encode a value of exactly type `kind`: a record class's generated encoder, else `_feed_any`.

    Why generated code: the drill and every import or restore digest each
    record they handle (65,000 at 1x HEAVY), and the recursive walk made ~34
    calls and as many hash updates per record (cProfile of a first export's
    drill: 3.66 of 18.2 s in it). A record class's encoder is one function,
    written once from its fields and their annotations: each field's usual
    types are tested inline by exact type (None first, then str, bool, bytes,
    int, datetime, date, tuples, dicts and nested record classes as the
    annotation names them), their parts are appended to one list with
    precomputed headers, and the list is hashed in one call. Any other value
    goes to `_value` and so to `_feed_any`, which defines the encoding, so the
    parts are the same for every value. CPU of all 6,502 records of a 0.1x HEAVY
    account against the walk it replaced: 2.10x faster (median of 15
    interleaved rounds, 1.73-3.30; 2.07x, 1.91-2.47, over the 65,002 of 1x;
    `bench/record_digest.py`). The same plan as closures per field, without
    `exec`, was 1.07x (a prototype, 9 interleaved rounds): a call per value is
    what the walk cost. What is left
    is mostly `datetime.isoformat` and SHA-256 itself (a 20 KiB photo: ~13 us).
    """
    if _record_class(kind) is None:
        return _generic
    source = _Source()
    source.line("def encode(v, parts):")
    source.record("v", kind, "    ", ())
    namespace = source.names
    code = compile("\n".join(source.lines), f"<record_digest encoder of {kind.__qualname__}>", "exec")
    exec(code, namespace)  # noqa: S102  # our own source, written from a dataclass's fields
    encode: Encoder = namespace["encode"]
    return encode


def _generic(value: Any, parts: list[Any]) -> None:
    _feed_any(parts.append, value)


def _value(value: Any, parts: list[Any]) -> None:
    """Encode a value the generated code does not test for: by its own type's encoder."""
    kind: Any = type(value)
    _encoder(kind)(value, parts)


class _Source:
    """The source of one record class's encoder (see `_encoder`), and the names it uses."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "S": _STR_HEADS,
            "B": _BYTES_HEADS,
            "P": _TUPLE_HEADS,
            "long": _long,
            "value": _value,
            "datetime_part": _datetime_part,
            "date_part": _date_part,
            "datetime": dt.datetime,
            "date": dt.date,
        }
        self.count = 0

    def line(self, text: str) -> None:
        self.lines.append(text)

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, value: Any) -> str:
        name = self.fresh("c")
        self.names[name] = value
        return name

    def record(self, var: str, kind: Any, pad: str, within: tuple[Any, ...]) -> None:
        """Lines encoding the record in `var`, of exactly the record class `kind`: its header, then each field."""
        header, names = _record_class(kind) or (b"", ())
        try:
            hints = typing.get_type_hints(kind)
        except (NameError, TypeError):  # an annotation that does not resolve: every field tested as Any
            hints = {}
        self.line(f"{pad}parts.append({header!r})")
        for name in names:
            field = self.fresh("f")
            self.line(f"{pad}{field} = {var}.{name}")
            self.value(field, hints.get(name, Any), pad, (*within, kind))

    def value(self, var: str, hint: Any, pad: str, within: tuple[Any, ...]) -> None:
        """Lines encoding the value in `var`: the types `hint` allows inline, anything else by `_value`."""
        branches = list(self.branches(var, hint, within))
        for number, (test, body) in enumerate(branches):
            self.line(f"{pad}{'elif' if number else 'if'} {test}:")
            body(pad + "    ")
        inner = pad + "    " if branches else pad
        if branches:
            self.line(f"{pad}else:")
        self.line(f"{inner}value({var}, parts)")

    def branches(self, var: str, hint: Any, within: tuple[Any, ...]) -> Iterator[tuple[str, Callable[[str], None]]]:
        """(test, writer of its body) for each type `hint` allows that has an inline encoding."""
        options = _alternatives(hint)
        for option in options:
            origin = typing.get_origin(option) or option
            args = typing.get_args(option)
            if option is type(None):
                yield f"{var} is None", lambda pad: self.line(f"{pad}parts.append(b'N')")
            elif option is bool:
                yield f"{var} is True", lambda pad: self.line(f"{pad}parts.append(b'T')")
                yield f"{var} is False", lambda pad: self.line(f"{pad}parts.append(b'F')")
            elif option is str:
                yield f"type({var}) is str", lambda pad: self.text(f"{var}.encode()", pad)
            elif option is bytes:
                yield f"type({var}) is bytes", lambda pad: self.data(var, "B", b"b%d:", pad)
            elif option is int:
                yield f"type({var}) is int", lambda pad: self.line(f"{pad}parts.append(b'i%d;' % {var})")
            elif option is dt.datetime:
                yield f"type({var}) is datetime", lambda pad: self.line(f"{pad}parts.append(datetime_part({var}))")
            elif option is dt.date:
                yield f"type({var}) is date", lambda pad: self.line(f"{pad}parts.append(date_part({var}))")
            elif origin is tuple:
                item = args[0] if len(args) == 2 and args[1] is Ellipsis else Any
                yield f"type({var}) is tuple", functools.partial(self.items, var, item, within=within)
            elif origin in (dict, Mapping):
                key, item = args if len(args) == 2 else (Any, Any)
                yield f"type({var}) is dict", functools.partial(self.mapping, var, key, item, within=within)
            elif isinstance(option, type) and option not in within and _record_class(option) is not None:
                test = f"type({var}) is {self.constant(option)}"
                yield test, functools.partial(self.record, var, option, within=within)

    def text(self, encoded: str, pad: str) -> None:
        data = self.fresh("d")
        self.line(f"{pad}{data} = {encoded}")
        self.data(data, "S", b"s%d:", pad)

    def data(self, data: str, heads: str, head: bytes, pad: str) -> None:
        size = self.fresh("n")
        self.line(f"{pad}{size} = len({data})")
        self.line(f"{pad}if {size} < {SHORT}:")
        self.line(f"{pad}    parts.append({heads}[{size}])")
        self.line(f"{pad}    parts.append({data})")
        self.line(f"{pad}else:")
        self.line(f"{pad}    long(parts, {head!r}, {data})")

    def items(self, var: str, item: Any, pad: str, within: tuple[Any, ...]) -> None:
        size, each = self.fresh("n"), self.fresh("i")
        self.line(f"{pad}if {var}:")
        self.line(f"{pad}    {size} = len({var})")
        self.line(f"{pad}    parts.append(P[{size}] if {size} < {SHORT} else b'(%d:' % {size})")
        self.line(f"{pad}    for {each} in {var}:")
        self.value(each, item, pad + "        ", within)
        self.line(f"{pad}else:")
        self.line(f"{pad}    parts.append(b'(0:')")

    def mapping(self, var: str, key: Any, item: Any, pad: str, within: tuple[Any, ...]) -> None:
        name, each = self.fresh("m"), self.fresh("i")
        self.line(f"{pad}parts.append(b'{{%d:' % len({var}))")
        self.line(f"{pad}for {name}, {each} in {var}.items():")
        self.value(name, key, pad + "    ", within)
        self.value(each, item, pad + "    ", within)


def _alternatives(hint: Any) -> list[Any]:
    """The types an annotation allows, None first: the cheapest test, and the usual value of an optional field."""
    if hint is Any:
        options: tuple[Any, ...] = (type(None), str)
    elif isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = typing.get_args(hint)
    else:
        options = (hint,)
    return sorted(options, key=lambda option: option is not type(None))


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
