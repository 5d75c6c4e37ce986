"""Read iCalendar files (ours and other programs') back into canonical records.

Why it lives next to the writer: the round trip `read_calendar(iter_calendar(...))`
is how we prove an archive holds everything, so both sides share
`exporters.ical.values`. Values come back canonical: text cleaned, enumerations
upper case, RRULEs and alarm triggers in the text form of `canonical_rrule` and
`canonical_duration`, times as `When` (zoned by IANA name, UTC, floating or all-day),
recurrence values in the series' kind and zone. Values the writer marked
`X-LIFEBOAT-DEFAULT` (added only because RFC 5545 requires them) read as `None`.
"""

from __future__ import annotations

import codecs
import datetime as dt
import functools
import hashlib
import re
import warnings
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from icalendar import Calendar as VCalendar
from icalendar import Component
from icalendar.error import BrokenCalendarProperty, GloballyUniqueTZIDGuessed
from icalendar.parser.content_line import Contentline
from icalendar.parser.ical.calendar import CalendarIcalParser
from icalendar.parser.parameter import Parameters
from icalendar.parser.string import validate_token
from icalendar.prop import vDuration
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from account.canonical import is_utc_zone
from account.records import Alarm, Attendee, Calendar, CalendarInfo, Event, Override, Person, When
from account.recurrence import canonical_rrule
from errors import InvalidInput, not_utf8
from exporters.ical.lean import LeanDecoder, is_zone
from exporters.ical.unread import OURS, EventLosses, Unread
from exporters.ical.values import (
    MARK,
    conform,
    duration_between,
    email_of,
    fit_end,
    instant,
    optional,
    shift,
)

MAX_PROBLEMS = 50
_ESCAPE = re.compile(r"\\([\\,;:nN])")  # RFC 5545 TEXT escapes (and a stray "\:")


def read_calendar(data: bytes) -> Calendar:
    """Parse one .ics file (all its VCALENDARs) into a `Calendar`, or raise `InvalidInput`.

    VEVENTs sharing a UID become one event: the one without RECURRENCE-ID is the series,
    the others its overrides. Overrides whose series is missing (an invitation to single
    instances) become a series made of exactly those instances.
    """
    try:
        with warnings.catch_warnings():
            # "/vendor/.../Europe/Berlin" TZIDs: icalendar guesses the IANA zone, as we want.
            warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
            calendars = _parse(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The file is not a valid iCalendar file: {exc}") from None
    calendars = [c for c in calendars if c.name == "VCALENDAR"]
    if not calendars:
        raise InvalidInput("The file holds no calendar (BEGIN:VCALENDAR is missing)")
    masters: dict[str, list[Component]] = {}
    overrides: dict[str, list[Component]] = {}
    order: list[str] = []
    for cal in calendars:
        for comp in cal.subcomponents:
            if comp.name != "VEVENT":
                continue
            uid = optional(comp.get("UID")) or "lifeboat-" + hashlib.sha256(comp.to_ical()).hexdigest()[:32]
            if uid not in masters:
                masters[uid], overrides[uid] = [], []
                order.append(uid)
            (overrides if "RECURRENCE-ID" in comp else masters)[uid].append(comp)
    problems: list[tuple[str, str]] = []
    events: list[Event] = []
    for uid in order:
        try:
            events.extend(_events(uid, masters[uid], overrides[uid]))
        except ValueError as exc:
            if len(problems) < MAX_PROBLEMS:
                problems.append((_which_event(uid, (masters[uid] or overrides[uid])[0]), str(exc)))
    if problems:
        raise InvalidInput(f"The calendar file has {len(problems)} problem(s)", problems)
    return Calendar(info=_info(calendars[0]), events=tuple(events))


@dataclass(frozen=True)
class UnreadableEvent:
    """In place of an event the reader could not read (`stream_calendar_items`): which one, and why."""

    which: str  # "event 'uid'", as a problem names it
    problem: str


def stream_calendar_items(chunks: Iterable[bytes]) -> tuple[CalendarInfo, Iterator[Event | UnreadableEvent]]:
    """`stream_calendar`, with an `UnreadableEvent` in the place of each event it could not read.

    Why: the fidelity drill pairs what it reads back with the records in order; an
    event left out would pair every later one with the wrong record and hide the
    one that failed. A file that cannot be read on (cut short, not UTF-8) still raises.
    """
    return _streamed(chunks, lean=True, in_place=True)


# The X- properties the reader takes from a calendar's header (the writer's).
_HEADER_READ = frozenset({"X-WR-CALNAME", "X-WR-CALDESC", "X-APPLE-CALENDAR-COLOR"})


def stream_calendar(
    chunks: Iterable[bytes], *, lean: bool = True, unread: Unread | None = None
) -> tuple[CalendarInfo, Iterator[Event]]:
    """`read_calendar` for a calendar that arrives in pieces: its info now, then its events one by one.

    Why: an archive's calendar can hold 100,000 events; `read_calendar` holds the
    text, icalendar's tree of it and every record at once. Here each VEVENT is
    parsed by icalendar on its own as the text streams past, so memory is one
    event (or one series with its overrides) however big the file is.

    It reads what `read_calendar` reads, with the same checks and messages, for
    files laid out as Lifeboat writes them. Where a file is laid out otherwise the
    stream cannot look ahead: the calendar's name, colour and description are
    taken from the properties before its first component; an override is joined to
    its series only when it follows it (with other overrides of it) directly, so a
    series split apart comes out as two events with one UID, which the store
    refuses; a VTIMEZONE applies to the events after it (TZIDs that are IANA
    names, as Lifeboat writes, need none). The event generator raises
    `InvalidInput` at the end if any event had a problem (at most `MAX_PROBLEMS`
    listed), after yielding the others: a caller writing them must roll back.

    A series VEVENT as our writer emits it is read in one pass (`exporters.ical.quick`);
    other VEVENTs are decoded by `exporters.ical.lean` where it can give exactly what
    icalendar gives (it does for what our writer emits), else by icalendar;
    `lean=False` always uses icalendar (the tests compare the two).

    `unread`, if given, is told each property no record keeps, by event UID: another
    program's X- properties (`X-MOZ-SNOOZE`), the standard ones no `Event` has a place
    for (GEO, PRIORITY, CLASS, an alarm's REPEAT), an override's that differ from its
    series' (its own ATTENDEE); and the calendar's own ("" for the item) with the
    components other than events and time zones (a VTODO): a restore says what it left out.
    Our writer's own properties are none of them (DTSTAMP says only when the file was made).
    """
    return _streamed(chunks, lean=lean, in_place=False, unread=unread)  # problems are raised at the end


def _streamed(
    chunks: Iterable[bytes], *, lean: bool, in_place: bool, unread: Unread | None = None
) -> tuple[CalendarInfo, Iterator[Any]]:
    items = _calendar_items(_logical_lines(chunks))
    header: list[str] = []
    for kind, lines in items:
        if kind == "calendar":
            header = lines
            break
        _parse_lines(lines)  # a component outside any VCALENDAR: checked, then left out as read_calendar does
    else:
        raise InvalidInput("The file holds no calendar (BEGIN:VCALENDAR is missing)")
    (calendar,) = _parse_lines(["BEGIN:VCALENDAR", *header, "END:VCALENDAR"])
    if unread is not None:
        unread("", [name for name in _x_names(header) if name not in _HEADER_READ and not name.startswith(OURS)])
    return _info(calendar), _stream_events(items, _LEAN.decode if lean else None, in_place, unread)


def _x_names(lines: Iterable[str]) -> Iterator[str]:
    """The names of the X- properties among `lines` (content lines), upper case."""
    for line in lines:
        if line[:2] in ("X-", "x-"):
            yield re.split("[;:]", line, maxsplit=1)[0].upper()


def _stream_events(
    items: Iterator[tuple[str, list[str]]],
    decode: Callable[[list[str]], Any] | None,
    in_place: bool,
    unread: Unread | None = None,
) -> Iterator[Event | UnreadableEvent]:
    problems: list[tuple[str, str]] = []
    from exporters.ical.quick import quick_event  # here: it reads with this module's helpers

    losses = EventLosses(unread) if unread is not None else None

    uid: str | None = None
    masters: list[Component | Event] = []
    overrides: list[Component] = []

    def flush() -> Iterator[Event | UnreadableEvent]:
        if uid is None:
            return
        try:
            yield from _events(uid, masters, overrides)
        except ValueError as exc:
            which = _which_event(uid, (masters or overrides)[0])
            if in_place:
                yield UnreadableEvent(which, str(exc))
            elif len(problems) < MAX_PROBLEMS:
                problems.append((which, str(exc)))

    for kind, lines in items:
        if kind != "component":
            _parse_lines(["BEGIN:VCALENDAR", *lines, "END:VCALENDAR"] if kind != "other" else lines)
            if unread is not None and kind == "props":  # after a component: the calendar's info is read already
                unread("", [re.split("[;:]", line, maxsplit=1)[0].upper() for line in lines])
            continue
        if lines[0] == "BEGIN:VTIMEZONE":
            _timezone_checked(tuple(lines))
            continue
        quick = quick_event(lines) if decode is not None else None
        if quick is not None:  # a series VEVENT read in one pass (the usual event of our own files)
            if quick[0] != uid:
                yield from flush()
                uid, masters, overrides = quick[0], [], []
            masters.append(quick[1])
            if losses is not None:
                losses.tell(quick[0], lines)
            continue
        comp = decode(lines) if decode is not None else None
        if comp is None:
            (comp,) = _parse_lines(lines)
        if comp.name != "VEVENT":
            if unread is not None:  # VTIMEZONE is read for the TZIDs after it; a VTODO... is no record
                unread("", [f"a {comp.name}"] if comp.name != "VTIMEZONE" else [])
            continue
        comp_uid = optional(comp.get("UID")) or "lifeboat-" + hashlib.sha256(comp.to_ical()).hexdigest()[:32]
        if losses is not None:
            losses.tell(comp_uid, lines)
        if comp_uid != uid:
            yield from flush()
            uid, masters, overrides = comp_uid, [], []
        (overrides if "RECURRENCE-ID" in comp else masters).append(comp)
    yield from flush()
    if problems:
        raise InvalidInput(f"The calendar file has {len(problems)} problem(s)", problems)


@functools.lru_cache(maxsize=256)
def _timezone_checked(lines: tuple[str, ...]) -> None:
    """Parse a VTIMEZONE (a file with a broken one is refused), once per distinct text in this process.

    Why once: each calendar of an account carries the same VTIMEZONEs, and every
    archive again; parsing them was 13 % of reading back a typical account's
    archive (cProfile of the fidelity drill, 200 contacts, 1,000 events). Nothing
    of it is kept but what icalendar's parser notes itself, the first definition
    of a TZID no zone database knows (`tzp.cache_timezone_component` keeps the
    first and ignores the rest), so parsing the same lines again changes nothing.
    A parse that fails raises, is not remembered and fails again next time.
    """
    _parse_lines(list(lines))


def _which_event(uid: str, comp: Component | Event) -> str:
    """How a problem names its event: by UID, or by its summary where the file gave it no UID.

    Why: the UID made up for an event without one (`lifeboat-<hash>`) is in no file the user could search.
    """
    if isinstance(comp, Event) or "UID" in comp:  # an `Event` read in one pass had its UID (`quick_event`)
        return f"event {uid!r}"
    summary = optional(comp.get("SUMMARY"))
    return f"event without UID, summary {summary!r}" if summary else "event without UID or SUMMARY"


_BLANKS = re.compile(r"[ \t]+")
_BEGIN_END = re.compile(r"(BEGIN|END):(.*)\Z", re.IGNORECASE | re.DOTALL)


def _calendar_items(lines: Iterator[str]) -> Iterator[tuple[str, list[str]]]:
    """The parts of the file in order, each as its content lines.

    ("calendar", properties before its first component) once per VCALENDAR;
    ("component", BEGIN...END lines) for each component inside one; ("props",
    lines) for properties after a component; ("other", lines) for a component
    outside any VCALENDAR. Raises `InvalidInput` for a file cut short.
    """
    depth = 0  # 1 inside a VCALENDAR, more inside one of its components
    block: list[str] = []
    header: list[str] | None = None
    outside = False
    for line in lines:
        mark = _BEGIN_END.match(line) if line[0] in "BbEe" else None
        if depth == 0:
            if mark is None:
                if line.upper().startswith("X-COMMENT"):
                    continue
                raise InvalidInput(f"The file is not a valid iCalendar file: {line[:60]!r} is outside BEGIN:VCALENDAR")
            if mark.group(1).upper() == "END":
                raise InvalidInput(
                    "The file is not a valid iCalendar file: END encountered without an accompanying BEGIN!"
                )
            outside = mark.group(2).upper() != "VCALENDAR"
            depth, block, header = 1, [line] if outside else [], None if outside else []
            continue
        if mark is not None:
            begin = mark.group(1).upper() == "BEGIN"
            if depth == 1 and not outside:
                if not begin:  # END:VCALENDAR
                    if header is not None:
                        yield "calendar", header
                    elif block:
                        yield "props", block
                    depth, block = 0, []
                    continue
                if header is not None:
                    yield "calendar", header
                    header = None
                elif block:
                    yield "props", block
                block = []
            depth += 1 if begin else -1
            block.append(line)
            if depth == 1 and not outside:
                yield "component", block
                block = []
            elif depth == 0:  # the end of a component outside any VCALENDAR
                yield "other", block
                block = []
            continue
        if header is not None and depth == 1:
            header.append(line)
        else:
            block.append(line)
    if depth:
        raise InvalidInput("The calendar file is cut short: a BEGIN has no END (is the file complete?)")


def _logical_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Unfolded content lines, as icalendar's `Contentlines.from_ical` makes them, from pieces of UTF-8.

    Lines end at LF (a CR before it is dropped); a line starting with a space or
    a tab continues the one before, blank lines are skipped.

    Why whole pieces at a time: the lines of a piece are unfolded by `str`
    methods and one regular expression over its complete lines, not line by
    line in Python; the last complete line is held back, as the next piece may
    continue it. Measured with `bench/calendar_read.py`.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    rest = ""  # the piece's last line, not complete yet
    held = ""  # the last complete logical line, which the next piece may continue
    read = 0
    for chunk in _with_end(chunks):
        try:
            text = rest + (decoder.decode(chunk) if chunk is not None else decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            # Counted from the file's start: less what the decoder held back from the last chunk, plus a BOM it ate.
            bom = 3 if read == 0 and (chunk or b"").startswith(codecs.BOM_UTF8) else 0
            raise _not_utf8(read - len(decoder.getstate()[0]) + exc.start + bom) from None
        read += len(chunk or b"")
        if chunk is not None:
            cut = text.rfind("\n") + 1
            text, rest = text[:cut], text[cut:]
            if not text:
                continue
        elif text:
            text += "\n"  # the file's last line, without its line end
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        text = held + "\n" + text if held else text.lstrip("\n")  # no line before: nothing to continue
        while "\n\n" in text:  # blank lines: skipped, so a fold after one continues the line before it
            text = text.replace("\n\n", "\n")
        lines = unfolded(text)
        held = lines.pop() if lines else held
        yield from lines
    if held:
        yield held


def unfolded(text: str) -> list[str]:
    """The logical lines of `text` (complete lines, each ending in LF, no blank one), folds joined."""
    lines = _UNFOLD.sub("", text).split("\n")
    lines.pop()  # "" after the last line end
    return lines


_UNFOLD = re.compile(r"\n[ \t]")


def _not_utf8(offset: int) -> InvalidInput:
    """Refused, as the vCard and Markdown readers refuse it: replacing bad bytes would change the data unseen."""
    return InvalidInput(not_utf8("the calendar file", offset))


def _with_end(chunks: Iterable[bytes]) -> Iterator[bytes | None]:
    yield from chunks
    yield None


def _parse_lines(lines: list[str]) -> list[Component]:
    """icalendar's parse of some content lines, as `_parse` does it for a whole file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
            stand_in = None
            if any("\\" in line for line in lines):
                text = "\n".join(lines)
                stand_in = next(chr(c) for c in range(0xE000, 0x10FFFF) if chr(c) not in text)
                protected = [_protect_line(line, stand_in) for line in lines]
            else:
                protected = lines
            content: list[Contentline] = [_Line(line) for line in protected]  # type: ignore[no-untyped-call]
            components = _Parser(content, _COMPONENTS, _TYPES).parse()
            if stand_in is not None and protected != lines:
                for comp in components:
                    for sub in comp.walk():
                        for value in sub.values():
                            for prop in value if isinstance(value, list) else [value]:
                                _restore(getattr(prop, "params", None), stand_in)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The file is not a valid iCalendar file: {exc}") from None
    return list(components)


class _Line(Contentline):
    """icalendar's content line, split without walking the whole value.

    Why: `Contentline.raw_parts` looks at every character of the line to find
    the ':' before the value, and goes on to the end of the line after finding
    it; for DESCRIPTIONs that was the largest single cost of reading a calendar
    (cProfile, 0.1x HEAVY: 8.2 s of 20.4 s in icalendar's parse). Nothing after
    that ':' changes the split, so this splits the part up to it with
    icalendar's own code and takes the rest as the value: the same parts
    (tests/formats/test_ical_stream.py compares them), and on any error
    icalendar's own message from the whole line.
    """

    __slots__ = ()

    def raw_parts(self) -> tuple[str, Any, str]:
        colon = self.find(":")
        if colon < 0:
            return super().raw_parts()
        head = self[:colon]
        if '"' in head or "\\" in head:  # quotes or escapes before the ':': the careful walk decides
            return super().raw_parts()
        if ";" not in head and colon:  # no parameters (most lines): what icalendar makes of an empty list
            name = head if getattr(self, "strict", False) else _BLANKS.sub("", head.strip())
            try:
                validate_token(name)
            except ValueError:
                return super().raw_parts()
            return name, Parameters(), self[colon + 1 :]
        strict = getattr(self, "strict", False)
        known = _HEADS.get((head, strict))
        if known is None:
            try:
                name, params, _ = Contentline(self[: colon + 1], strict=strict).raw_parts()
            except ValueError:
                return super().raw_parts()
            if len(_HEADS) >= _HEADS_KEPT:
                _HEADS.clear()
            known = _HEADS[head, strict] = name, tuple(params.items())
        name, items = known
        # A new Parameters each time: a property's parameters may be changed after parsing (`_restore`).
        return (
            name,
            Parameters((key, list(value) if isinstance(value, list) else value) for key, value in items),
            self[colon + 1 :],
        )


# Lines with parameters repeat their name and parameters (`DTSTART;TZID=Europe/Berlin`,
# `ATTENDEE;ROLE=...`): parsed once each, as long as a few thousand fit.
_HEADS: dict[tuple[str, bool], tuple[str, tuple[tuple[str, Any], ...]]] = {}
_HEADS_KEPT = 4096


class _Parser(CalendarIcalParser):
    """icalendar's calendar parser, finding each property's value type once per name and VALUE.

    Why: icalendar looks the type up twice per property, each time through
    case-insensitive dictionaries; the answer depends on the name and the VALUE
    parameter only. Memoised, parsing a calendar took 18% less CPU (0.1x HEAVY,
    2,500 events: 0.60 s -> 0.49 s).
    """

    def get_factory_for_property(self, name: str, params: Parameters) -> Any:
        return _factory(name, params.value)


@functools.lru_cache(maxsize=1024)
def _factory(name: str, value: str | None) -> Any:
    return _TYPES.for_property(name, value)


_TYPES = VCalendar.types_factory
_LEAN = LeanDecoder(_parse_lines)
_COMPONENTS = VCalendar._get_component_factory()  # what `VCalendar.from_ical` gives its parser


_FOLD = re.compile(r"\r?\n[ \t]")
_NAME = re.compile(r"[^;:]*")


def _parse(data: bytes) -> list[VCalendar]:
    """icalendar's parse, with backslashes in parameters taken literally.

    Why: RFC 5545 has no backslash escapes in parameters (RFC 6868 uses `^`), but
    icalendar reads `\\;` `\\:` `\\,` there as escapes, so `CN=Ann\\;PARTSTAT=ACCEPTED`
    (as Radicale serves a name ending in a backslash) would swallow the PARTSTAT. A
    character absent from the file stands in for them while icalendar parses.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc.start) from None
    if "\\" not in text:
        return VCalendar.from_ical(text, multiple=True)
    stand_in = next(chr(c) for c in range(0xE000, 0x10FFFF) if chr(c) not in text)
    lines = _FOLD.sub("", text).split("\n")
    protected = [_protect_line(line, stand_in) for line in lines]
    calendars = VCalendar.from_ical("\n".join(protected), multiple=True)
    if protected != lines:
        for cal in calendars:
            for comp in cal.walk():
                for value in comp.values():
                    for prop in value if isinstance(value, list) else [value]:
                        _restore(getattr(prop, "params", None), stand_in)
    return calendars


def _protect_line(line: str, stand_in: str) -> str:
    name_end = _NAME.match(line).end()  # type: ignore[union-attr]  # always matches
    if "\\" not in line or name_end >= len(line) or line[name_end] != ";":
        return line
    quoted = False
    for end in range(name_end, len(line)):
        if line[end] == '"':
            quoted = not quoted
        elif line[end] == ":" and not quoted:
            break
    else:
        end = len(line)
    return line[:name_end] + line[name_end:end].replace("\\", stand_in) + line[end:]


def _restore(params: dict[str, Any] | None, stand_in: str) -> None:
    if params is None:
        return
    for key, value in params.items():
        if isinstance(value, str) and stand_in in value:
            params[key] = value.replace(stand_in, "\\")
        elif isinstance(value, list):
            params[key] = [v.replace(stand_in, "\\") if isinstance(v, str) else v for v in value]


def _info(cal: Component) -> CalendarInfo:
    return CalendarInfo(
        name=_x_text(cal, "X-WR-CALNAME") or optional(cal.get("NAME")) or "",
        color=_x_text(cal, "X-APPLE-CALENDAR-COLOR") or optional(cal.get("COLOR")),
        description=_x_text(cal, "X-WR-CALDESC") or optional(cal.get("DESCRIPTION")),
    )


def _events(uid: str, masters: Sequence[Component | Event], overrides: list[Component]) -> list[Event]:
    """The events of one UID: its series (read in one pass already, or read here) with its overrides."""
    if not masters:
        return [_orphans(uid, overrides)]
    made = [m if isinstance(m, Event) else _event(uid, m) for m in masters]
    return [_with_overrides(made[0], overrides), *made[1:]]


def _with_overrides(event: Event, comps: list[Component]) -> Event:
    if not comps:
        return event  # most events: `replace` would rebuild the record for nothing
    return replace(event, overrides=tuple(_override(c, event.start) for c in comps))


def _orphans(uid: str, comps: list[Component]) -> Event:
    """A series holding exactly the instances the file overrides (its master is elsewhere)."""
    first = comps[0]
    start = _when(first["RECURRENCE-ID"], "RECURRENCE-ID")
    rdates = tuple(conform(_when(c["RECURRENCE-ID"], "RECURRENCE-ID"), start) for c in comps[1:])
    event = Event(
        uid=uid,
        start=start,
        summary=optional(first.get("SUMMARY")),
        rdates=tuple(r for r in rdates if r != start),
    )
    return _with_overrides(event, comps)


def _event(uid: str, comp: Component) -> Event:
    if "DTSTART" not in comp:
        raise ValueError("has no start (DTSTART)")
    start = _when(comp["DTSTART"], "DTSTART")
    end = _end(comp, start)
    rrule = None
    if "X-LIFEBOAT-RRULE" in comp:
        rrule = _x_text(comp, "X-LIFEBOAT-RRULE")
    elif "RRULE" in comp:
        rrule = canonical_rrule(_first(comp["RRULE"]).to_ical().decode(), start)
    return Event(
        uid=uid,
        start=start,
        summary=_text(comp, "SUMMARY"),
        description=_text(comp, "DESCRIPTION"),
        location=_text(comp, "LOCATION"),
        end=end,
        rrule=rrule,
        rdates=tuple(conform(w, start) for w in _whens(comp, "RDATE")),
        exdates=tuple(conform(w, start) for w in _whens(comp, "EXDATE")),
        status=_token(comp, "STATUS"),
        transparency=_token(comp, "TRANSP"),
        organizer=_person(comp.get("ORGANIZER")),
        attendees=tuple(_attendee(a) for a in _all(comp.get("ATTENDEE"))),
        alarms=tuple(a for c in comp.subcomponents if c.name == "VALARM" if (a := _alarm(c, start, end))),
        categories=tuple(t for prop in _all(comp.get("CATEGORIES")) for cat in _cats(prop) if (t := optional(cat))),
        url=_x_text(comp, "X-LIFEBOAT-URL") or optional(comp.get("URL")),
        created=_stamp(comp.get("CREATED")),
        updated=_stamp(comp.get("LAST-MODIFIED")),
    )


def _override(comp: Component, series_start: When) -> Override:
    rid = conform(_when(comp["RECURRENCE-ID"], "RECURRENCE-ID"), series_start)
    start = None
    if "DTSTART" in comp and not _marked(comp["DTSTART"]):
        start = _when(comp["DTSTART"], "DTSTART")
    return Override(
        recurrence_id=rid,
        summary=_text(comp, "SUMMARY"),
        description=_text(comp, "DESCRIPTION"),
        location=_text(comp, "LOCATION"),
        start=start,
        end=_end(comp, start or rid),
        status=_token(comp, "STATUS"),
    )


def _end(comp: Component, start: When) -> When | None:
    if "X-LIFEBOAT-DTEND" in comp:  # an end RFC 5545 cannot express, kept by our writer
        return _when(_first(comp["X-LIFEBOAT-DTEND"]), "X-LIFEBOAT-DTEND")
    if "DTEND" in comp and not _marked(comp["DTEND"]):
        return fit_end(start, _when(comp["DTEND"], "DTEND"))
    if "DURATION" in comp and not _marked(comp["DURATION"]):
        return shift(start, _duration(comp["DURATION"], "DURATION"))
    return None


def _duration(prop: Any, name: str) -> dt.timedelta:
    """A DURATION value; icalendar reads `DURATION:20200101` as a date, which is a problem, not a crash."""
    value = _parsed(prop, "dt")  # none if repeated (a list) or unreadable
    if not isinstance(value, dt.timedelta):
        raise ValueError(f"{name} {_shown(prop)}is not a duration: write it as PT1H, P1D or -PT15M")
    return value


def _alarm(comp: Component, start: When, end: When | None) -> Alarm | None:
    if "X-LIFEBOAT-TRIGGER" in comp:
        trigger = _x_text(comp, "X-LIFEBOAT-TRIGGER") or ""
    elif "TRIGGER" in comp:
        prop: Any = comp["TRIGGER"]  # any of icalendar's value types: checked below
        absolute = _parsed(prop, "dt")
        if isinstance(absolute, dt.datetime):  # absolute: as an offset from the (first) start
            value = instant(_when_of(absolute, None)) - instant(start)
        else:
            value = _duration(prop, "TRIGGER")
            if (_param(prop, "RELATED") or "START").upper() == "END" and end is not None:
                value = value + duration_between(start, end)
        trigger = vDuration(value).to_ical().decode()
    else:
        return None  # RFC 5545 requires TRIGGER: an alarm without one never fires
    return Alarm(trigger=trigger, action=_token(comp, "ACTION"), description=_text(comp, "DESCRIPTION"))


def _person(prop: Any) -> Person | None:
    if prop is None:
        return None
    prop = _first(prop)
    return Person(email=email_of(prop), name=_cn(prop))


def _attendee(prop: Any) -> Attendee:
    return Attendee(
        email=email_of(prop),
        name=_cn(prop),
        role=_upper(_param(prop, "ROLE")),
        partstat=_upper(_param(prop, "PARTSTAT")),
    )


def _cn(prop: Any) -> str | None:
    return optional(_param(prop, "CN"))


# --- values ---------------------------------------------------------------------------


def _when(prop: Any, name: str) -> When:
    return _when_of(_time(prop, name), _param(prop, "TZID"))


def _time(prop: Any, name: str) -> Any:
    """The date, date-time or period of a property that may appear once; ValueError for anything else.

    Why: a file edited by hand may repeat DTSTART (icalendar then gives a list) or
    hold a value icalendar keeps unparsed; that is a problem with the event, not a crash.
    """
    if isinstance(prop, list):
        raise ValueError(f"has {name} more than once")
    try:  # inline, not `_parsed`: this runs for every event, and a `try` costs nothing until it catches
        value = getattr(prop, "dt", None)
    except BrokenCalendarProperty:  # see `_parsed`
        value = None
    if not isinstance(value, dt.date | tuple):
        raise ValueError(f"{name} {_shown(prop)}is not a date or a date-time: {_DATE_FORMS}")
    return value


# The fix in a problem's words: what a date or date-time looks like in an .ics file (RFC 5545 3.3.4, 3.3.5).
_DATE_FORMS = "write it as YYYYMMDD (all day) or YYYYMMDDTHHMMSS (Z at the end for UTC)"


def _parsed(prop: Any, attribute: str) -> Any:
    """`prop.<attribute>` (`dt`, `dts`), or None where icalendar kept the value unparsed or it has none.

    Why: for a value it could not parse (`DTSTART:20261301T000000`) icalendar keeps
    the text and raises its own wording on access ("Cannot access 'dt' on broken
    property 'DTSTART' (expected 'vDDDTypes')..."); the event's problem should say
    which property, what it holds and how to write it instead. Only a broken value
    pays for the `try` (none is paid on Python 3.11 when nothing is raised).
    """
    try:
        return getattr(prop, attribute, None)
    except BrokenCalendarProperty:
        return None


def _shown(prop: Any) -> str:
    """The property's value as the file has it, quoted and followed by a space, for a problem's words ("" if none)."""
    try:
        text = str(prop) if isinstance(prop, str) else prop.to_ical().decode()
    except (AttributeError, ValueError, TypeError):
        return ""
    return f"{text[:40]!r} " if text else ""


def _cats(prop: Any) -> list[Any]:
    values = getattr(prop, "cats", None)
    if values is None:
        raise ValueError("CATEGORIES cannot be read")
    return list(values)


def _whens(comp: Component, name: str) -> list[When]:
    out = []
    for prop in _all(comp.get(name)):
        tzid = _param(prop, "TZID")
        items = _parsed(prop, "dts")
        if items is None:
            raise ValueError(
                f"{name} {_shown(prop)}is not a list of dates or date-times: {_DATE_FORMS}, commas between"
            )
        for item in items:
            out.append(_when_of(item.dt, tzid))
    return out


def _when_of(value: Any, tzid: str | None) -> When:
    if isinstance(value, tuple):  # a PERIOD: its start is the instance
        value = value[0]
    if not isinstance(value, dt.datetime):
        return When(date=value)
    if value.microsecond:  # a datetime's `replace` costs as much as the rest of this function
        value = value.replace(microsecond=0)
    name = _zone_name(str(tzid), value.tzinfo) if tzid else None
    if name is not None:
        wall = value if value.tzinfo is None else value.replace(tzinfo=None)  # the lean decoder's are wall times
        if is_utc_zone(name):
            return When(datetime=wall.replace(tzinfo=dt.UTC))
        return When(datetime=wall, tz=name)
    if value.tzinfo is None:
        return When(datetime=value)  # floating (or a TZID nobody defines)
    return When(datetime=value.astimezone(dt.UTC))  # Z, or a zone only the file defines


def _zone_name(tzid: str, tzinfo: dt.tzinfo | None) -> str | None:
    """The IANA name for a TZID: as written, a Windows name's equivalent, or icalendar's guess.

    Why prefer a name over the file's VTIMEZONE: a weekly 09:00 meeting must stay at
    09:00 local time across DST changes, which only a zone (not a UTC offset) gives.
    """
    if is_zone(tzid):
        return tzid
    if tzid in WINDOWS_TO_OLSON:
        return WINDOWS_TO_OLSON[tzid]
    if isinstance(tzinfo, zoneinfo.ZoneInfo) and tzinfo.key:
        return tzinfo.key
    return None


def _stamp(prop: Any) -> dt.datetime | None:
    if prop is None:
        return None
    try:  # inline for speed, as in `_time`
        value = getattr(_first(prop), "dt", None)
    except BrokenCalendarProperty:  # see `_parsed`
        value = None
    if not isinstance(value, dt.date):
        raise ValueError(f"CREATED or LAST-MODIFIED {_shown(_first(prop))}is not a date-time: {_DATE_FORMS}")
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _param(prop: Any, name: str) -> str | None:
    params = getattr(prop, "params", None)
    if not params:  # most of a property's parameters are none at all: no look-up, no case folding
        return None
    value = params.get(name)
    return None if value is None else str(value)


def _x_text(comp: Component, name: str) -> str | None:
    """An X- property as TEXT: icalendar keeps unknown properties escaped, so unescape here."""
    prop = comp.get(name)
    if prop is None:
        return None
    raw = _first(prop).to_ical().decode()
    return optional(_ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), raw))


def _marked(prop: Any) -> bool:
    return (_param(prop, MARK) or "").upper() == "TRUE"


def _text(comp: Component, name: str) -> str | None:
    prop = comp.get(name)
    if prop is None:
        return None
    prop = _first(prop)
    return None if _marked(prop) else optional(prop)


def _token(comp: Component, name: str) -> str | None:
    kept = _KEPT_TOKENS.get(name) or f"X-LIFEBOAT-{name}"
    if kept in comp:  # a value RFC 5545 does not allow, kept by our writer
        return _x_text(comp, kept)
    return _upper(_text(comp, name))


_KEPT_TOKENS = {name: f"X-LIFEBOAT-{name}" for name in ("STATUS", "TRANSP", "ACTION")}


def _upper(value: object) -> str | None:
    text = optional(value)
    return text.strip().upper() or None if text else None


def _all(value: Any) -> Iterable[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value
