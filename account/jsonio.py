"""Read and write accounts in the JSON format of `account.schema.json`.

Why two stages: the JSON Schema check reports every structural problem at
once with its JSON path; the conversion then parses values (dates, zones,
rules, base64) into canonical records and reports each bad value by path too.
Nothing is returned unless the whole file is valid, so an import either
changes everything or nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import jsonschema

from account import canonical
from account.records import (
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
from errors import InvalidInput

T = TypeVar("T")
MAX_PROBLEMS = 50


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("account").joinpath("account.schema.json").read_text("utf-8"))


class _Problems:
    """Collects `(json_path, message)` pairs while converting, instead of stopping at the first."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((path, message))

    def value(self, path: str, convert: Callable[[Any], T], raw: Any) -> T | None:
        try:
            return convert(raw)
        except ValueError as exc:
            self.add(path, str(exc))
            return None


def load_account(data: bytes | str) -> Account:
    """Parse and validate an account file, or raise `InvalidInput` listing every problem."""
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "The file is not valid JSON", [(f"line {exc.lineno}, column {exc.colno}", exc.msg)]
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text; save it as UTF-8 JSON") from None
    return account_from_dict(document)


def account_from_dict(document: Any) -> Account:
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = [(e.json_path, _schema_message(e)) for e in errors[:MAX_PROBLEMS]]
        raise InvalidInput(f"The account file has {len(errors)} problem(s)", problems)
    problems = _Problems()
    account = _account(document, problems)
    if problems.items:
        raise InvalidInput(f"The account file has {len(problems.items)} problem(s)", problems.items)
    return account


def _schema_message(error: jsonschema.ValidationError) -> str:
    # jsonschema quotes the whole offending instance; huge notes make that unreadable.
    message = error.message
    return message if len(message) <= 300 else message[:297] + "..."


def _account(doc: Mapping[str, Any], p: _Problems) -> Account:
    timezone = p.value("$.timezone", canonical.timezone_name, doc.get("timezone", "UTC")) or "UTC"
    contacts = tuple(_contact(c, f"$.contacts[{i}]", p) for i, c in enumerate(doc["contacts"]))
    calendars = tuple(_calendar(c, f"$.calendars[{i}]", p) for i, c in enumerate(doc["calendars"]))
    notes = tuple(_note(n, f"$.notes[{i}]", p) for i, n in enumerate(doc["notes"]))
    _unique(p, "$.contacts", "uid", [c.uid for c in contacts])
    _unique(p, "$.notes", "id", [n.id for n in notes])
    _unique(p, "$.calendars", "name", [c.info.name for c in calendars])
    for i, cal in enumerate(calendars):
        _unique(p, f"$.calendars[{i}].events", "uid", [e.uid for e in cal.events])
    return Account(
        email=doc["email"].strip().lower(),
        display_name=canonical.optional_text(doc.get("display_name")),
        timezone=timezone,
        contacts=contacts,
        calendars=calendars,
        notes=notes,
    )


def _unique(p: _Problems, path: str, key: str, values: Iterable[str]) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            p.add(f"{path}[{i}].{key}", f"duplicates {path}[{seen[value]}].{key} ({value!r})")
        seen.setdefault(value, i)


def _text(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> str | None:
    return p.value(f"{path}.{key}", canonical.optional_text, d.get(key))


def _required_text(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> str:
    value = _text(d, key, path, p)
    if not value:
        p.add(f"{path}.{key}", "must not be empty")
        return ""
    return value


def _texts(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> tuple[str, ...]:
    values = (p.value(f"{path}.{key}[{i}]", canonical.optional_text, v) for i, v in enumerate(d.get(key, ())))
    return tuple(v for v in values if v)


def _stamp(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> dt.datetime | None:
    return None if key not in d else p.value(f"{path}.{key}", canonical.timestamp, d[key])


def _base64(path: str, p: _Problems, value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        p.add(path, "is not valid base64 data")
        return b""


def _types(item: Mapping[str, Any], where: str, p: _Problems) -> tuple[tuple[str, ...], bool]:
    for j, raw in enumerate(item.get("types", ())):
        if p.value(f"{where}.types[{j}]", canonical.type_token, raw) is None:
            return (), False
    return canonical.type_tokens(list(item.get("types", ())))


def _typed(items: Iterable[Mapping[str, Any]], path: str, p: _Problems) -> tuple[Typed, ...]:
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        value = _required_text(item, "value", where, p)
        types, pref = _types(item, where, p)
        out.append(Typed(value=value, types=types, preferred=pref or bool(item.get("preferred", False))))
    return tuple(out)


def _contact(d: Mapping[str, Any], path: str, p: _Problems) -> Contact:
    name = None
    if "name" in d:
        parts = {
            k: _text(d["name"], k, f"{path}.name", p) for k in ("family", "given", "additional", "prefix", "suffix")
        }
        name = Name(**parts) if any(parts.values()) else None
    addresses = []
    for i, a in enumerate(d.get("addresses", ())):
        where = f"{path}.addresses[{i}]"
        fields = ("po_box", "extended", "street", "locality", "region", "postal_code", "country", "label")
        types, pref = _types(a, where, p)
        addresses.append(
            Address(
                types=types,
                preferred=pref or bool(a.get("preferred", False)),
                **{k: _text(a, k, where, p) for k in fields},
            )
        )
    photo = None
    if "photo" in d:
        media_type = p.value(f"{path}.photo.media_type", canonical.media_type, d["photo"]["media_type"]) or ""
        photo = Blob(media_type=media_type, data=_base64(f"{path}.photo.data_base64", p, d["photo"]["data_base64"]))
    extra = {}
    for key, value in d.get("extra", {}).items():
        prop = p.value(f"{path}.extra.{key}", canonical.property_name, key)
        raw = p.value(f"{path}.extra.{key}", canonical.raw_value, value)
        if prop and raw is not None:
            if prop in _reserved_vcard_properties():
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
        emails=_typed(d.get("emails", ()), f"{path}.emails", p),
        phones=_typed(d.get("phones", ()), f"{path}.phones", p),
        addresses=tuple(addresses),
        urls=_typed(d.get("urls", ()), f"{path}.urls", p),
        impps=_typed(d.get("impps", ()), f"{path}.impps", p),
        birthday=p.value(f"{path}.birthday", canonical.birthday, d["birthday"]) if "birthday" in d else None,
        anniversary=p.value(f"{path}.anniversary", canonical.birthday, d["anniversary"])
        if "anniversary" in d
        else None,
        categories=_texts(d, "categories", path, p),
        note=_text(d, "note", path, p),
        photo=photo,
        extra=extra,
        created=_stamp(d, "created", path, p),
        updated=_stamp(d, "updated", path, p),
    )


@cache
def _reserved_vcard_properties() -> frozenset[str]:
    # The vCard writer owns this list; imported lazily so the account layer stays importable alone.
    try:
        from exporters.vcard import RESERVED_PROPERTIES
    except ImportError:  # pragma: no cover - only while the exporter is absent
        return frozenset()
    return RESERVED_PROPERTIES


def _when(d: Mapping[str, Any], path: str, p: _Problems) -> When | None:
    has_date, has_datetime = "date" in d, "datetime" in d
    if has_date == has_datetime:
        p.add(path, "give exactly one of 'date' (all-day) or 'datetime'")
        return None
    if has_date:
        if "tz" in d:
            p.add(f"{path}.tz", "an all-day 'date' has no time zone; remove 'tz'")
        try:
            return When(date=dt.date.fromisoformat(d["date"]))
        except ValueError:
            p.add(f"{path}.date", f"{d['date']!r} is not a date such as 2009-10-05")
            return None
    try:
        value = dt.datetime.fromisoformat(d["datetime"].replace("Z", "+00:00")).replace(microsecond=0)
    except ValueError:
        p.add(f"{path}.datetime", f"{d['datetime']!r} is not a date-time such as 2009-10-05T09:00:00")
        return None
    tz = p.value(f"{path}.tz", canonical.timezone_name, d["tz"]) if "tz" in d else None
    if value.tzinfo is not None:
        if tz is not None:
            p.add(f"{path}.tz", "give either an offset/Z in 'datetime' or a 'tz', not both")
        return When(datetime=value.astimezone(dt.UTC))
    if tz is not None and canonical.is_utc_zone(tz):
        return When(datetime=value.replace(tzinfo=dt.UTC))
    return When(datetime=value, tz=tz)


def _whens(items: Iterable[Mapping[str, Any]], path: str, p: _Problems) -> tuple[When, ...]:
    return tuple(w for i, item in enumerate(items) if (w := _when(item, f"{path}[{i}]", p)))


def _calendar(d: Mapping[str, Any], path: str, p: _Problems) -> Calendar:
    info = CalendarInfo(
        name=_required_text(d, "name", path, p),
        color=_text(d, "color", path, p),
        description=_text(d, "description", path, p),
    )
    return Calendar(info=info, events=tuple(_event(e, f"{path}.events[{i}]", p) for i, e in enumerate(d["events"])))


def _upper(d: Mapping[str, Any], key: str, path: str, p: _Problems) -> str | None:
    return p.value(f"{path}.{key}", canonical.upper_token, d[key]) if d.get(key) else None


def _event(d: Mapping[str, Any], path: str, p: _Problems) -> Event:
    start = _when(d["start"], f"{path}.start", p) or When(date=dt.date(1970, 1, 1))
    end = _when(d["end"], f"{path}.end", p) if "end" in d else None
    if end is not None and end.is_all_day != start.is_all_day:
        p.add(f"{path}.end", "start and end must both be all-day dates or both date-times")
    overrides = []
    for i, o in enumerate(d.get("overrides", ())):
        where = f"{path}.overrides[{i}]"
        rid = _when(o["recurrence_id"], f"{where}.recurrence_id", p)
        if rid is not None and (rid.is_all_day != start.is_all_day or rid.tz != start.tz):
            p.add(f"{where}.recurrence_id", "must have the same kind (date or date-time) and zone as the event's start")
        overrides.append(
            Override(
                recurrence_id=rid or start,
                summary=_text(o, "summary", where, p),
                description=_text(o, "description", where, p),
                location=_text(o, "location", where, p),
                start=_when(o["start"], f"{where}.start", p) if "start" in o else None,
                end=_when(o["end"], f"{where}.end", p) if "end" in o else None,
                status=_upper(o, "status", where, p),
            )
        )
    if overrides and "rrule" not in d and "rdates" not in d:
        p.add(f"{path}.overrides", "overrides need a recurring event (rrule or rdates)")
    organizer = None
    if "organizer" in d:
        org = d["organizer"]
        organizer = Person(
            email=_required_text(org, "email", f"{path}.organizer", p), name=_text(org, "name", f"{path}.organizer", p)
        )
    attendees = tuple(
        Attendee(
            email=_required_text(a, "email", f"{path}.attendees[{i}]", p),
            name=_text(a, "name", f"{path}.attendees[{i}]", p),
            role=_upper(a, "role", f"{path}.attendees[{i}]", p),
            partstat=_upper(a, "partstat", f"{path}.attendees[{i}]", p),
        )
        for i, a in enumerate(d.get("attendees", ()))
    )
    alarms = tuple(
        Alarm(
            trigger=p.value(f"{path}.alarms[{i}].trigger", canonical.duration, a["trigger"]) or "",
            action=a.get("action"),
            description=_text(a, "description", f"{path}.alarms[{i}]", p),
        )
        for i, a in enumerate(d.get("alarms", ()))
    )
    return Event(
        uid=_required_text(d, "uid", path, p),
        start=start,
        summary=_text(d, "summary", path, p),
        description=_text(d, "description", path, p),
        location=_text(d, "location", path, p),
        end=end,
        rrule=p.value(f"{path}.rrule", lambda v: _rrule(v, start), d["rrule"]) if "rrule" in d else None,
        rdates=_same_kind(_whens(d.get("rdates", ()), f"{path}.rdates", p), start, f"{path}.rdates", p),
        exdates=_same_kind(_whens(d.get("exdates", ()), f"{path}.exdates", p), start, f"{path}.exdates", p),
        overrides=tuple(overrides),
        status=d.get("status"),
        transparency=d.get("transparency"),
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
    from exporters.ical import canonical_rrule  # the iCalendar writer owns the text form

    return canonical_rrule(canonical.rrule(value), start)


def _same_kind(whens: tuple[When, ...], start: When, path: str, p: _Problems) -> tuple[When, ...]:
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
            media_type=p.value(f"{path}.attachments[{i}].media_type", canonical.media_type, a["media_type"]) or "",
            data=_base64(f"{path}.attachments[{i}].data_base64", p, a["data_base64"]),
        )
        for i, a in enumerate(d.get("attachments", ()))
    )
    body = d["body"]
    if canonical.has_surrogate(body):
        p.add(f"{path}.body", "contains an unpaired surrogate (invalid Unicode); re-save the file as UTF-8")
    return Note(
        id=_required_text(d, "id", path, p),
        title=p.value(f"{path}.title", canonical.text, d["title"]) or "",
        body=body,  # Markdown is kept byte for byte
        notebook=_text(d, "notebook", path, p),
        tags=_texts(d, "tags", path, p),
        pinned=bool(d.get("pinned", False)),
        archived=bool(d.get("archived", False)),
        attachments=attachments,
        created=_stamp(d, "created", path, p),
        updated=_stamp(d, "updated", path, p),
    )
