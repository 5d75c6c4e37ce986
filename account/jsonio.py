"""Read and write accounts in the JSON format of `account.schema.json`.

Why one pass over two checks: the JSON Schema check finds structural problems
(a missing `start`, a number where text belongs) and the conversion finds bad
values (an impossible birthday, an unknown zone, an RRULE that does not
parse). Both run on every file and their problems are reported together, each
with its JSON path, in document order: a user who fixes the missing `start`
must not discover the birthday only on the next attempt. So the conversion
never assumes the schema held: it reads every field through accessors that
skip a value of the wrong JSON type (the schema error already names it).
Nothing is returned unless the whole file is valid, so an import either
changes everything or nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import jsonschema

from account import canonical, storable
from account.records import (
    MAX_FILE_BYTES,
    MAX_NOTE_TEXT_BYTES,
    Account,
    Address,
    Alarm,
    Attachment,
    Attendee,
    Blob,
    Calendar,
    CalendarInfo,
    Contact,
    Event,
    Name,
    Note,
    Override,
    Person,
    Typed,
    When,
)
from account.recurrence import canonical_rrule  # the one text form the iCalendar writer writes
from account.reserved import RESERVED_VCARD_PROPERTIES
from errors import InvalidInput

T = TypeVar("T")
MAX_PROBLEMS = 50
_PATH_PART = re.compile(r"\[(\d+)\]|\.([^.\[]+)")
# The file's own order, so problems are listed as a reader meets them.
_TOP_LEVEL_ORDER = {
    name: i for i, name in enumerate(("email", "display_name", "timezone", "contacts", "calendars", "notes"))
}


@cache
def schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resources.files("account").joinpath("account.schema.json").read_text("utf-8"))
    return document


@dataclass(frozen=True)
class Loaded:
    """An imported account and the JSON paths where the NUL rule changed a value.

    `replaced` lists each field whose U+0000 became U+FFFD (see
    `account.canonical.NUL_REPLACEMENT`), so the import summary can say so.
    """

    account: Account
    replaced: tuple[str, ...] = ()
    # Each field that lost control characters (`account.canonical.text`: no vCard, iCalendar or YAML
    # text can carry them), so the import summary says so rather than change the data unseen.
    without_controls: tuple[str, ...] = ()


class _Problems:
    """Collects `(json_path, message)` pairs while converting, instead of stopping at the first.

    `lenient` is set when the schema check already found problems: a value of
    the wrong JSON type then reaches a converter as a `TypeError`, which is
    not reported twice. Without schema problems such an error is a bug and
    propagates.
    """

    def __init__(self, *, lenient: bool) -> None:
        self.items: list[tuple[str, str]] = []
        self.replaced: list[str] = []
        self.without_controls: list[str] = []
        self.lenient = lenient

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def value(self, path: str, convert: Callable[[Any], T], raw: Any) -> T | None:
        if raw is None:
            return None
        try:
            result = convert(raw)
        except ValueError as exc:
            self.add(path, str(exc))
            return None
        except (TypeError, AttributeError):
            if not self.lenient:
                raise
            return None
        if isinstance(raw, str) and canonical.NUL in raw:
            self.replaced.append(path)
        # A note's body keeps its controls (`canonical.markdown`): only a text field drops them.
        dropped = isinstance(result, str) and not canonical.has_controls(result)
        if isinstance(raw, str) and canonical.has_controls(raw) and dropped:
            self.without_controls.append(path)
        return result


def load_account(data: bytes | str) -> Loaded:
    """Parse and validate an account file, or raise `InvalidInput` listing every problem."""
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "The file is not valid JSON", [(f"line {exc.lineno}, column {exc.colno}", exc.msg)]
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text; save it as UTF-8 JSON") from None
    return parse_account(document)


def account_from_dict(document: Any) -> Account:
    """The account in `document` (parsed JSON), or `InvalidInput` listing every problem."""
    return parse_account(document).account


def parse_account(document: Any) -> Loaded:
    """Check `document` against the schema and convert it, reporting every problem of both at once."""
    validator = jsonschema.Draft202012Validator(schema())
    structural = [(e.json_path, _schema_message(e)) for e in validator.iter_errors(document)]
    problems = _Problems(lenient=bool(structural))
    account = _account(document if isinstance(document, Mapping) else {}, problems)
    problems.items.extend(storable.limit_problems(account))
    found = sorted(dict.fromkeys(structural + problems.items), key=lambda item: _path_key(item[0]))
    if found:
        shown = "" if len(found) <= MAX_PROBLEMS else f" (the first {MAX_PROBLEMS} are listed)"
        raise InvalidInput(f"The account file has {len(found)} problem(s){shown}", found[:MAX_PROBLEMS])
    return Loaded(
        account,
        tuple(sorted(problems.replaced, key=_path_key)),
        tuple(sorted(problems.without_controls, key=_path_key)),
    )


def _path_key(path: str) -> list[tuple[int, int, str]]:
    """Sort key for JSON paths in document order (`[2]` before `[10]`, a parent before its fields)."""
    order = _TOP_LEVEL_ORDER
    key: list[tuple[int, int, str]] = []
    for index, name in _PATH_PART.findall(path):
        key.append((0, int(index), "") if index else (1, order.get(name, len(order)), name))
    return key


def _schema_message(error: jsonschema.ValidationError) -> str:
    # jsonschema quotes the whole offending instance; huge notes make that unreadable.
    message = error.message
    return message if len(message) <= 300 else message[:297] + "..."


# --- accessors that tolerate a document the schema refused -------------------------------


def _str(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) else None


def _obj(d: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = d.get(key)
    return value if isinstance(value, Mapping) else None


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d.get(key)
    return value if isinstance(value, list) else []


def _objects(d: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    """`(index, object)` for each object in the list at `key`; other items are schema errors."""
    return [(i, item) for i, item in enumerate(_list(d, key)) if isinstance(item, Mapping)]


def _flag(d: Mapping[str, Any], key: str) -> bool:
    return d.get(key) is True


# --- conversion --------------------------------------------------------------------------


def _account(doc: Mapping[str, Any], p: _Problems) -> Account:
    # The schema's `"format": "email"` is not enforced by jsonschema; this is the check.
    email = p.value("$.email", canonical.email_address, _str(doc, "email")) or ""
    timezone = p.value("$.timezone", canonical.timezone_name, _str(doc, "timezone") or "UTC") or "UTC"
    contacts = tuple(_contact(c, f"$.contacts[{i}]", p) for i, c in _objects(doc, "contacts"))
    calendars = tuple(_calendar(c, f"$.calendars[{i}]", p) for i, c in _objects(doc, "calendars"))
    notes = tuple(_note(n, f"$.notes[{i}]", p) for i, n in _objects(doc, "notes"))
    _unique(p, "$.contacts", "uid", [(i, c.uid) for (i, _), c in zip(_objects(doc, "contacts"), contacts, strict=True)])
    _unique(p, "$.notes", "id", [(i, n.id) for (i, _), n in zip(_objects(doc, "notes"), notes, strict=True)])
    indexed_calendars = list(zip(_objects(doc, "calendars"), calendars, strict=True))
    _unique(p, "$.calendars", "name", [(i, c.info.name) for (i, _), c in indexed_calendars])
    for (i, raw), cal in indexed_calendars:
        uids = [(j, e.uid) for (j, _), e in zip(_objects(raw, "events"), cal.events, strict=True)]
        _unique(p, f"$.calendars[{i}].events", "uid", uids)
    return Account(
        email=email,
        display_name=_text(doc, "display_name", "$", p),
        timezone=timezone,
        contacts=contacts,
        calendars=calendars,
        notes=notes,
    )


def _unique(p: _Problems, path: str, key: str, values: Iterable[tuple[int, str]]) -> None:
    seen: dict[str, int] = {}
    for i, value in values:
        if not value:
            continue  # missing: reported where it is read
        if value in seen:
            p.add(f"{path}[{i}].{key}", f"duplicates {path}[{seen[value]}].{key} ({value!r})")
        seen.setdefault(value, i)


def _text(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> str | None:
    return p.value(f"{path}.{key}", canonical.optional_text, _str(d, key))


def _required_text(
    d: Mapping[str, Any], key: str, path: str, p: _Problems, convert: Callable[[str], str] = canonical.text
) -> str:
    # Absent or not text: the schema says so. Unreadable: `p.value` says so.
    value = p.value(f"{path}.{key}", convert, _str(d, key))
    if value == "":
        p.add(f"{path}.{key}", "must not be empty")
    return value or ""


def _texts(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> tuple[str, ...]:
    values = (
        p.value(f"{path}.{key}[{i}]", canonical.optional_text, v if isinstance(v, str) else None)
        for i, v in enumerate(_list(d, key))
    )
    return tuple(v for v in values if v)


def _stamp(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> dt.datetime | None:
    return p.value(f"{path}.{key}", canonical.timestamp, _str(d, key))


def _base64(path: str, p: _Problems, value: str | None) -> bytes:
    if value is None:
        return b""
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        p.add(path, "is not valid base64 data")
        return b""
    if len(data) > MAX_FILE_BYTES:
        p.add(path, f"is {len(data):,} bytes; an attachment may be at most {_mib(MAX_FILE_BYTES)}")
        return b""
    return data


def _mib(limit: int) -> str:
    return f"{limit:,} bytes ({limit >> 20} MiB)"


def _types(item: Mapping[str, Any], where: str, p: _Problems) -> tuple[tuple[str, ...], bool]:
    raw = [v for v in _list(item, "types") if isinstance(v, str)]
    for j, value in enumerate(_list(item, "types")):
        if isinstance(value, str) and p.value(f"{where}.types[{j}]", canonical.type_token, value) is None:
            return (), False
    return canonical.type_tokens(raw)


def _typed(items: Iterable[tuple[int, Mapping[str, Any]]], path: str, p: _Problems) -> tuple[Typed, ...]:
    # Values are free text, not checked addresses or URLs: the schema's `typed` has no
    # format, and vCard EMAIL/URL/IMPP values are text that other programs fill freely.
    out = []
    for i, item in items:
        where = f"{path}[{i}]"
        value = _required_text(item, "value", where, p)
        types, pref = _types(item, where, p)
        out.append(Typed(value=value, types=types, preferred=pref or _flag(item, "preferred")))
    return tuple(out)


def _contact(d: Mapping[str, Any], path: str, p: _Problems) -> Contact:
    name = None
    raw_name = _obj(d, "name")
    if raw_name is not None:
        parts = {
            k: _text(raw_name, k, f"{path}.name", p) for k in ("family", "given", "additional", "prefix", "suffix")
        }
        name = Name(**parts) if any(parts.values()) else None
    addresses = []
    for i, a in _objects(d, "addresses"):
        where = f"{path}.addresses[{i}]"
        fields = ("po_box", "extended", "street", "locality", "region", "postal_code", "country", "label")
        types, pref = _types(a, where, p)
        addresses.append(
            Address(
                types=types,
                preferred=pref or _flag(a, "preferred"),
                **{k: _text(a, k, where, p) for k in fields},
            )
        )
    photo = None
    raw_photo = _obj(d, "photo")
    if raw_photo is not None:
        media_type = p.value(f"{path}.photo.media_type", canonical.media_type, _str(raw_photo, "media_type")) or ""
        data = _base64(f"{path}.photo.data_base64", p, _str(raw_photo, "data_base64"))
        photo = Blob(media_type=media_type, data=data)
    extra = {}
    for key, value in (_obj(d, "extra") or {}).items():
        prop = p.value(f"{path}.extra.{key}", canonical.property_name, key)
        raw = p.value(f"{path}.extra.{key}", canonical.raw_value, value if isinstance(value, str) else None)
        if prop and raw is not None:
            if prop in RESERVED_VCARD_PROPERTIES:
                p.add(f"{path}.extra.{key}", f"{prop} is written by Lifeboat itself; use the matching field instead")
            extra[prop] = raw
    return Contact(
        uid=_required_text(d, "uid", path, p),
        formatted_name=_text(d, "formatted_name", path, p),
        name=name,
        nickname=_text(d, "nickname", path, p),
        organization=_text(d, "organization", path, p),
        department=_text(d, "department", path, p),
        title=_text(d, "title", path, p),
        role=_text(d, "role", path, p),
        emails=_typed(_objects(d, "emails"), f"{path}.emails", p),
        phones=_typed(_objects(d, "phones"), f"{path}.phones", p),
        addresses=tuple(addresses),
        urls=_typed(_objects(d, "urls"), f"{path}.urls", p),
        impps=_typed(_objects(d, "impps"), f"{path}.impps", p),
        birthday=p.value(f"{path}.birthday", canonical.birthday, _str(d, "birthday")),
        anniversary=p.value(f"{path}.anniversary", canonical.birthday, _str(d, "anniversary")),
        categories=_texts(d, "categories", path, p),
        note=_text(d, "note", path, p),
        photo=photo,
        extra=extra,
        created=_stamp(d, "created", path, p),
        updated=_stamp(d, "updated", path, p),
    )


def _when(d: Mapping[str, Any] | None, path: str, p: _Problems) -> When | None:
    if d is None:
        return None  # absent or not an object: the schema says so
    has_date, has_datetime = "date" in d, "datetime" in d
    if has_date == has_datetime:
        p.add(path, "give exactly one of 'date' (all-day) or 'datetime'")
        return None
    tz_raw = _str(d, "tz")
    if has_date:
        if "tz" in d:
            p.add(f"{path}.tz", "an all-day 'date' has no time zone; remove 'tz'")
        date = _str(d, "date")
        if date is None:
            return None
        try:
            return When(date=dt.date.fromisoformat(date))
        except ValueError:
            p.add(f"{path}.date", f"{date!r} is not a date such as 2009-10-05")
            return None
    tz = p.value(f"{path}.tz", canonical.timezone_name, tz_raw)
    raw = _str(d, "datetime")
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(microsecond=0)
    except ValueError:
        p.add(f"{path}.datetime", f"{raw!r} is not a date-time such as 2009-10-05T09:00:00")
        return None
    if value.tzinfo is not None:
        if tz is not None:
            p.add(f"{path}.tz", "give either an offset/Z in 'datetime' or a 'tz', not both")
        return When(datetime=value.astimezone(dt.UTC))
    if tz is not None and canonical.is_utc_zone(tz):
        return When(datetime=value.replace(tzinfo=dt.UTC))
    return When(datetime=value, tz=tz)


def _whens(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> tuple[When, ...]:
    return tuple(w for i, item in _objects(d, key) if (w := _when(item, f"{path}.{key}[{i}]", p)))


def _calendar(d: Mapping[str, Any], path: str, p: _Problems) -> Calendar:
    info = CalendarInfo(
        name=_required_text(d, "name", path, p),
        color=_text(d, "color", path, p),
        description=_text(d, "description", path, p),
    )
    events = tuple(_event(e, f"{path}.events[{i}]", p) for i, e in _objects(d, "events"))
    return Calendar(info=info, events=events)


def _upper(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> str | None:
    return p.value(f"{path}.{key}", canonical.upper_token, _str(d, key) or None)


def _event(d: Mapping[str, Any], path: str, p: _Problems) -> Event:
    # Without a usable start (missing: a schema error; bad: reported by `_when`) the
    # checks that compare with it are skipped rather than reported against a stand-in.
    known = _when(_obj(d, "start"), f"{path}.start", p)
    start = known or When(date=dt.date(1970, 1, 1))
    end = _when(_obj(d, "end"), f"{path}.end", p)
    if known is not None and end is not None and end.is_all_day != start.is_all_day:
        p.add(f"{path}.end", "start and end must both be all-day dates or both date-times")
    overrides = []
    for i, o in _objects(d, "overrides"):
        where = f"{path}.overrides[{i}]"
        rid = _when(_obj(o, "recurrence_id"), f"{where}.recurrence_id", p)
        if known is not None and rid is not None and (rid.is_all_day != start.is_all_day or rid.tz != start.tz):
            p.add(f"{where}.recurrence_id", "must have the same kind (date or date-time) and zone as the event's start")
        overrides.append(
            Override(
                recurrence_id=rid or start,
                summary=_text(o, "summary", where, p),
                description=_text(o, "description", where, p),
                location=_text(o, "location", where, p),
                start=_when(_obj(o, "start"), f"{where}.start", p),
                end=_when(_obj(o, "end"), f"{where}.end", p),
                status=_upper(o, "status", where, p),
            )
        )
    if overrides and "rrule" not in d and "rdates" not in d:
        p.add(f"{path}.overrides", "overrides need a recurring event (rrule or rdates)")
    organizer = None
    org = _obj(d, "organizer")
    if org is not None:
        organizer = Person(
            email=_required_text(org, "email", f"{path}.organizer", p, canonical.calendar_address),
            name=_text(org, "name", f"{path}.organizer", p),
        )
    attendees = tuple(
        Attendee(
            email=_required_text(a, "email", f"{path}.attendees[{i}]", p, canonical.calendar_address),
            name=_text(a, "name", f"{path}.attendees[{i}]", p),
            role=_upper(a, "role", f"{path}.attendees[{i}]", p),
            partstat=_upper(a, "partstat", f"{path}.attendees[{i}]", p),
        )
        for i, a in _objects(d, "attendees")
    )
    alarms = tuple(
        Alarm(
            trigger=p.value(f"{path}.alarms[{i}].trigger", canonical.duration, _str(a, "trigger")) or "",
            action=_str(a, "action"),
            description=_text(a, "description", f"{path}.alarms[{i}]", p),
        )
        for i, a in _objects(d, "alarms")
    )
    rrule_check = (lambda v: _rrule(v, start)) if known is not None else canonical.rrule
    return Event(
        uid=_required_text(d, "uid", path, p),
        start=start,
        summary=_text(d, "summary", path, p),
        description=_text(d, "description", path, p),
        location=_text(d, "location", path, p),
        end=end,
        rrule=p.value(f"{path}.rrule", rrule_check, _str(d, "rrule")),
        rdates=_same_kind(_whens(d, "rdates", path, p), known, f"{path}.rdates", p),
        exdates=_same_kind(_whens(d, "exdates", path, p), known, f"{path}.exdates", p),
        overrides=tuple(overrides),
        status=_str(d, "status"),
        transparency=_str(d, "transparency"),
        organizer=organizer,
        attendees=attendees,
        alarms=alarms,
        categories=_texts(d, "categories", path, p),
        url=_text(d, "url", path, p),
        created=_stamp(d, "created", path, p),
        updated=_stamp(d, "updated", path, p),
    )


def _rrule(value: str, start: When) -> str:
    """The RRULE in canonical form; UNTIL takes the value type the series' start needs."""
    return canonical_rrule(canonical.rrule(value), start)


def _same_kind(whens: tuple[When, ...], start: When | None, path: str, p: _Problems) -> tuple[When, ...]:
    if start is None:
        return whens
    for i, when in enumerate(whens):
        if (
            when.is_all_day != start.is_all_day
            or when.tz != start.tz
            or (
                when.datetime is not None
                and start.datetime is not None
                and (when.datetime.tzinfo is None) != (start.datetime.tzinfo is None)
            )
        ):
            p.add(f"{path}[{i}]", "must have the same kind (date or date-time) and zone as the event's start")
    return whens


def _note(d: Mapping[str, Any], path: str, p: _Problems) -> Note:
    attachments = tuple(
        Attachment(
            filename=_required_text(a, "filename", f"{path}.attachments[{i}]", p),
            media_type=p.value(f"{path}.attachments[{i}].media_type", canonical.media_type, _str(a, "media_type"))
            or "",
            data=_base64(f"{path}.attachments[{i}].data_base64", p, _str(a, "data_base64")),
        )
        for i, a in _objects(d, "attachments")
    )
    return Note(
        id=_required_text(d, "id", path, p),
        title=p.value(f"{path}.title", canonical.text, _str(d, "title")) or "",
        body=_note_text(d, f"{path}.body", p),
        notebook=_text(d, "notebook", path, p),
        tags=_texts(d, "tags", path, p),
        pinned=_flag(d, "pinned"),
        archived=_flag(d, "archived"),
        attachments=attachments,
        created=_stamp(d, "created", path, p),
        updated=_stamp(d, "updated", path, p),
    )


def _note_text(d: Mapping[str, Any], path: str, p: _Problems) -> str:
    """A note's text, byte for byte but for NUL; refused past `MAX_NOTE_TEXT_BYTES` (its file is read whole)."""
    text = p.value(path, canonical.markdown, _str(d, "body")) or ""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_NOTE_TEXT_BYTES:
        p.add(path, f"is {size:,} bytes of text; a note may hold at most {_mib(MAX_NOTE_TEXT_BYTES)}")
        return ""
    return text
