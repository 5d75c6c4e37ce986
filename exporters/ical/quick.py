"""One pass from a series VEVENT's lines to its `Event`, for events as Lifeboat's writer emits them.

Why: the fidelity drill reads every event of a user's first archive back, and
at 1x HEAVY (50,000 events) reading them was the largest part of its cost. On
the lean path (`exporters.ical.lean`) each line became a property object that
`exporters.ical.reader._event` then asked for its value through a few calls
each. Most of an archive's lines repeat from event to event (DTSTAMP, STATUS,
CATEGORIES, ORGANIZER, ATTENDEE, alarms); only UID, SUMMARY, DESCRIPTION,
LOCATION, DTSTART and DTEND differ. So:

- those six are read straight from their line by the rules the lean decoder
  and `_event` apply (`unescape_backslash`, `LeanDecoder.time`, `_when_of`);
- every other line is read once per distinct text, by the lean decoder and the
  reader's own helper for that property (`_attendee`, `_person`, `_cats`,
  `_token`, `_whens`, `_stamp`, `_alarm`...), and what it gives the event is kept
  by the line's text: exact by construction, the same code on the same text;
- anything else (an override, a property read another way, a repeat, a line
  the lean decoder refuses, a value a helper refuses) gives None and the event
  is read the long way, which says what is wrong as it always did.

tests/formats/test_ical_lean.py holds the streams equal to icalendar's on
alice, generated accounts, hypothesis-generated calendars and edited events,
and proves every series VEVENT our writer emits takes this path.
`bench/calendar_read.py` measures it against another checkout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from icalendar.parser.property import unescape_backslash

from account.canonical import is_utc_zone
from account.records import Alarm, Event, Override, When
from account.recurrence import canonical_rrule
from exporters.ical import reader as slow
from exporters.ical.lean import KEPT_LINE_CHARS, REPEATABLE, LeanComponent, LeanDecoder, Refused
from exporters.ical.values import MARK, conform, fit_end, optional

_TEXTS = {"UID": 0, "SUMMARY": 1, "DESCRIPTION": 2, "LOCATION": 3}  # read when the line has no parameters
# Read the long way: an override's, `_end`'s other sources, values our writer keeps aside, and the six above
# in another form (`summary;LANGUAGE=de`, `dtstart`).
_LONG_WAY = frozenset(
    {"RECURRENCE-ID", "X-LIFEBOAT-DTEND", "DURATION", "X-LIFEBOAT-RRULE", "X-LIFEBOAT-STATUS", "X-LIFEBOAT-TRANSP"}
    | {"DTSTART", "DTEND", *_TEXTS}
)
_KEPT_LINES = 8192  # distinct lines remembered (then forgotten all at once, as `reader._HEADS` is)
_REFUSED = ("", "", None)  # a line that sends its event the long way
Reading = tuple[str, str, Any]  # (the Event field it fills, or ""; the property's name; the value)
_LINES: dict[str, Reading] = {}
# A DTSTART or DTEND line's part before ':' -> what `_time_head` finds in it.
_TIME_HEADS: dict[str, tuple[str | None, str | None, bool, bool]] = {}
_read_time = LeanDecoder.time_value
_ALARMS: dict[tuple[str, ...], LeanComponent | None] = {}
_FIXED_ALARMS: dict[tuple[str, ...], Alarm | None] = {}  # blocks whose alarm is the event's times' none of (`_fixed`)


def quick_event(lines: list[str]) -> tuple[str, Event] | None:
    """The UID and `Event` of a series VEVENT (BEGIN:VEVENT ... END:VEVENT), or None: read it the long way."""
    if lines[0] != "BEGIN:VEVENT" or lines[-1] != "END:VEVENT":
        return None
    texts: list[str | None] = [None, None, None, None]
    start_line: tuple[str, str] | None = None
    end_line: tuple[str, str] | None = None
    found: dict[str, Any] = {}
    attendees: list[Any] = []
    categories: list[str] = []
    rdates: list[When] = []
    exdates: list[When] = []
    alarm_blocks: list[tuple[str, ...]] = []
    alarm: list[str] | None = None
    for line in lines[1:-1]:
        if alarm is not None:
            if line == "END:VALARM":
                alarm_blocks.append(tuple(alarm))
                alarm = None
            else:
                alarm.append(line)
            continue
        # A line read before is one of the others (below): the same text is sorted the same way.
        # Most of an event's lines are (DTSTAMP, STATUS, ORGANIZER...); asking first spares them the
        # sorting. With the split below (no search when nothing is folded): 4.6% fewer instructions
        # reading 6,000 of 1x HEAVY's events (callgrind, 1,206 -> 1,150 million a pass).
        reading = _LINES.get(line)
        if reading is None:
            colon = line.find(":")
            if colon <= 0:
                return None
            head = line[:colon]
            slot = _TEXTS.get(head)
            if slot is not None:
                if texts[slot] is not None:
                    return None  # repeated
                raw = line[colon + 1 :]
                texts[slot] = unescape_backslash(raw) if "\\" in raw else raw
                continue
            if head == "DTSTART" or head.startswith("DTSTART;"):
                if start_line is not None:
                    return None
                start_line = (head, line[colon + 1 :])
                continue
            if head == "DTEND" or head.startswith("DTEND;"):
                if end_line is not None:
                    return None
                end_line = (head, line[colon + 1 :])
                continue
            if line == "BEGIN:VALARM":
                alarm = []
                continue
            reading = _reading(line)
        field, name, value = reading
        if not name:
            return None
        if field == "attendees":
            attendees.append(value)
        elif field == "categories":
            categories.extend(value)
        elif field == "rdates":
            rdates.extend(value)
        elif field == "exdates":
            exdates.extend(value)
        elif name in found:
            return None  # a property that may appear once, twice
        else:
            found[name] = value
    if alarm is not None or start_line is None or texts[0] is None:
        return None
    uid = optional(texts[0]) if texts[0].strip() else None
    if uid is None:
        return None  # the long way names an event by a hash of its text
    try:
        return uid, _event(
            uid, texts, start_line, end_line, found, alarm_blocks, (attendees, categories, rdates, exdates)
        )
    except (Refused, ValueError):
        return None


def read_block(data: bytes) -> Event | None:
    """One VEVENT block as our writer lays it out (its bytes, CRLF lines) read in one pass, or None.

    Why: the fidelity drill's memo cuts a calendar into its event groups as
    bytes (`exporters.archive.drill_memo.CalendarSplit`); reading a group that
    is one series VEVENT straight from its bytes skips cutting the stream into
    lines and components again (`reader._calendar_items`), which was a third of
    reading such a calendar (`bench/calendar_read.py`'s events, 25,000 groups:
    0.52 s instead of 0.82 s CPU, median of 5 interleaved, load ~5). It is the
    event the stream gives after the calendar's header: `quick_event` reads no
    header (only zone names it knows, never a file's VTIMEZONE). None for bytes
    that are not UTF-8, a lone CR or LF, a blank line, more than one VEVENT or
    anything `quick_event` leaves to the long way; the caller reads those as a
    stream, which says what is wrong.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    # Every CR and every LF is one CRLF, the last line's too, and no line is blank: split first, then
    # count, where a replace came after the counts (reading 1x HEAVY's 50,000 groups: ~5% less CPU).
    if lines.pop() or not lines or "" in lines or text.count("\r") != len(lines) or text.count("\n") != len(lines):
        return None
    if "\r\n " in text or "\r\n\t" in text:  # folded (a long line): `unfolded` joins them
        lines = slow.unfolded(text.replace("\r\n", "\n"))
    try:
        cut = lines.index("BEGIN:VEVENT", 1)
    except ValueError:
        found = quick_event(lines)
        return None if found is None else found[1]
    found = quick_event(lines[:cut])
    return None if found is None else _with_overrides(*found, lines[cut:])


def _with_overrides(uid: str, event: Event, lines: list[str]) -> Event | None:
    """A series read in one pass and the RECURRENCE-ID VEVENTs after it (`lines`), as the stream joins them, or None.

    Why: a tenth of a 1x HEAVY account's events have overrides, and the drill left
    each such group to the stream, which cost a quarter of reading the calendars
    back. The overrides are read here in one pass (`_quick_override`), else by what
    the stream reads them with (`reader._LEAN.decode`, `reader._override`, on the series' start); anything
    the stream would read otherwise (a block the lean decoder leaves to
    icalendar, another UID, a second series, a value `_override` refuses) gives
    None, and the caller reads the group as a stream, which says what is wrong.
    tests/formats/test_ical_lean.py holds every group read alone equal to the stream's event.
    """
    overrides: list[Override] = []
    start = 0
    while start < len(lines):
        if lines[start] != "BEGIN:VEVENT":
            return None
        try:
            end = lines.index("END:VEVENT", start) + 1
        except ValueError:
            return None
        try:
            made = _quick_override(lines[start:end], uid, event.start)
            if made is None:  # read as the stream reads it
                comp = slow._LEAN.decode(lines[start:end])
                if comp is None or "RECURRENCE-ID" not in comp or optional(comp.get("UID")) != uid:
                    return None
                made = slow._override(comp, event.start)  # type: ignore[arg-type]  # read as icalendar's
        except (Refused, ValueError):
            return None
        overrides.append(made)
        start = end
    return replace(event, overrides=tuple(overrides))  # as `reader._with_overrides` joins them


# SUMMARY, DESCRIPTION and LOCATION with only the mark our writer puts on a value an override inherits:
# `reader._text` reads them as absent.
_MARKED_TEXTS = {f"{name};{MARK}=TRUE": slot for name, slot in _TEXTS.items() if slot}
_OVERRIDE_TIMES = ("RECURRENCE-ID", "DTSTART", "DTEND")


def _quick_override(lines: list[str], uid: str, series_start: When) -> Override | None:
    """One RECURRENCE-ID VEVENT's lines as `reader._override` reads the lean decoder's component of them, or None.

    Why: decoding an override into a component and reading it back through
    `reader._override`'s helpers took a sixth of reading 1x HEAVY's groups,
    for a tenth of them. Read like `quick_event`: the texts and the three times
    from their lines, every other line by its reading kept in `_LINES` (which
    the lean decoder checked, and which gives STATUS as `_token` reads it); a
    text marked as inherited (`SUMMARY;X-LIFEBOAT-DEFAULT=TRUE`) is absent, as
    `_text` makes it. None (then the lean decoder and `_override`) for anything
    else: another form of those lines, a repeat, a line the lean decoder refuses
    or `_override` reads another way (`_LONG_WAY`: X-LIFEBOAT-DTEND, DURATION,
    X-LIFEBOAT-STATUS), no RECURRENCE-ID, another UID.
    """
    texts: list[str | None] = [None, None, None, None]
    given = [False, False, False, False]
    times: dict[str, tuple[str, str]] = {}
    found: dict[str, Any] = {}
    for line in lines[1:-1]:
        # Its own lines first (unlike `quick_event`): `_LINES` may hold one of them as refused.
        colon = line.find(":")
        if colon <= 0:
            return None
        head = line[:colon]
        slot = _TEXTS.get(head)
        marked = slot is None and (slot := _MARKED_TEXTS.get(head)) is not None
        if slot is not None:
            if given[slot]:
                return None
            given[slot] = True
            if not marked:
                raw = line[colon + 1 :]
                texts[slot] = unescape_backslash(raw) if "\\" in raw else raw
            continue
        name = head.partition(";")[0]
        if name in _OVERRIDE_TIMES:
            if name in times:
                return None
            times[name] = (head, line[colon + 1 :])
            continue
        if name == "BEGIN" or name == "END":
            return None  # a VALARM: never given to `_reading`, which would remember it refused for `quick_event`
        reading = _LINES.get(line) or _reading(line)
        _, name, value = reading
        if not name or (name in found and name not in REPEATABLE):
            return None
        found[name] = value
    if "RECURRENCE-ID" not in times or texts[0] is None or optional(texts[0]) != uid:
        return None
    rid = conform(_when("RECURRENCE-ID", *times["RECURRENCE-ID"]), series_start)
    start = _when("DTSTART", *times["DTSTART"], marked_none=True) if "DTSTART" in times else None
    end = None
    if "DTEND" in times and (ended := _when("DTEND", *times["DTEND"], marked_none=True)) is not None:
        end = fit_end(start or rid, ended)
    return Override(
        recurrence_id=rid,
        summary=optional(texts[1]),
        description=optional(texts[2]),
        location=optional(texts[3]),
        start=start,
        end=end,
        status=found.get("STATUS"),
    )


def _event(
    uid: str,
    texts: list[str | None],
    start_line: tuple[str, str],
    end_line: tuple[str, str] | None,
    found: dict[str, Any],
    alarm_blocks: list[tuple[str, ...]],
    lists: tuple[list[Any], list[str], list[When], list[When]],
) -> Event:
    """The `Event` `reader._event` makes of the same lines (`_end`, `_alarm`, the RRULE's canonical form)."""
    start = _when("DTSTART", *start_line)
    end = None
    if end_line is not None and (ended := _when("DTEND", *end_line, marked_none=True)) is not None:
        end = fit_end(start, ended)
    alarms: list[Alarm] = []
    for block in alarm_blocks:
        if block in _FIXED_ALARMS:  # the same alarm whatever the event's times
            made = _FIXED_ALARMS[block]
        else:
            component = _ALARMS[block] if block in _ALARMS else _alarm_component(block)
            if component is None:
                raise Refused
            made = slow._alarm(component, start, end)  # type: ignore[arg-type]  # read as icalendar's
            if _fixed(component):
                if len(_FIXED_ALARMS) >= _KEPT_LINES:
                    _FIXED_ALARMS.clear()
                _FIXED_ALARMS[block] = made
        if made:
            alarms.append(made)
    rule = found.get("RRULE")
    attendees, categories, rdates, exdates = lists
    return Event(
        uid=uid,
        start=start,
        summary=optional(texts[1]),
        description=optional(texts[2]),
        location=optional(texts[3]),
        end=end,
        rrule=None if rule is None else canonical_rrule(rule, start),
        rdates=tuple([conform(w, start) for w in rdates]) if rdates else (),  # no generator for the usual none
        exdates=tuple([conform(w, start) for w in exdates]) if exdates else (),
        status=found.get("STATUS"),
        transparency=found.get("TRANSP"),
        organizer=found.get("ORGANIZER"),
        attendees=tuple(attendees),
        alarms=tuple(alarms),
        categories=tuple(categories),
        url=found.get("X-LIFEBOAT-URL") or found.get("URL"),
        created=found.get("CREATED"),
        updated=found.get("LAST-MODIFIED"),
    )


def _when(name: str, head: str, raw: str, *, marked_none: bool = False) -> Any:  # When; None only if marked_none
    """A DTSTART or DTEND as `reader._when` reads it (None for a value marked `X-LIFEBOAT-DEFAULT` if `marked_none`).

    What `reader._when_of` decides from the line's TZID is decided once per distinct
    head (`_time_head`): the lean decoder's values are naive, or UTC with no zone to
    read them in, so the zone's name never depends on the value. Only the value is read per line.
    """
    known = _TIME_HEADS.get(head)
    if known is None:
        known = _time_head(name, head)
    tzid, zone, utc_zone, marked = known
    value = _read_time(raw, tzid)
    if marked and marked_none:
        return None
    if type(value) is not dt.datetime:
        return When(date=value)
    if zone is None:  # floating (or a TZID nobody defines), or Z: UTC already
        return When(datetime=value)
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return When(datetime=value.replace(tzinfo=dt.UTC)) if utc_zone else When(datetime=value, tz=zone)


def _time_head(name: str, head: str) -> tuple[str | None, str | None, bool, bool]:
    """For a DTSTART or DTEND head: the zone its value is read in, the zone's name as `reader._when_of` finds it
    for a value with no zone of its own (None: none), whether that name means UTC, and whether it is marked."""
    tzid, params = slow._LEAN.time_head(name, head)
    given = params.get("TZID")
    zone = slow._zone_name(str(given), None) if given else None
    known = (tzid, zone, zone is not None and is_utc_zone(zone), (params.get(MARK) or "").upper() == "TRUE")
    if len(head) <= KEPT_LINE_CHARS:
        if len(_TIME_HEADS) >= _KEPT_LINES:
            _TIME_HEADS.clear()
        _TIME_HEADS[head] = known
    return known


def _reading(line: str) -> Reading:
    """What one line (not one of the six read in place) gives its event, read once per distinct text."""
    try:
        name, prop = slow._LEAN.property("VEVENT", line)
        reading = _REFUSED if name in _LONG_WAY else _read(name, prop)
    except (Refused, ValueError):
        reading = _REFUSED
    if len(line) <= KEPT_LINE_CHARS:
        if len(_LINES) >= _KEPT_LINES:
            _LINES.clear()
        _LINES[line] = reading
    return reading


def _read(name: str, prop: Any) -> Reading:
    """`reader._event`'s reading of one property, alone in its component (the helpers read one at a time)."""
    alone = {name: prop}
    if name == "ATTENDEE":
        return "attendees", name, slow._attendee(prop)
    if name == "CATEGORIES":
        return "categories", name, tuple(t for cat in slow._cats(prop) if (t := optional(cat)))
    if name in ("RDATE", "EXDATE"):
        return name.lower() + "s", name, tuple(slow._whens(alone, name))  # type: ignore[arg-type]
    if name in ("STATUS", "TRANSP"):
        return "", name, slow._token(alone, name)  # type: ignore[arg-type]
    if name == "ORGANIZER":
        return "", name, slow._person(prop)
    if name == "RRULE":
        return "", name, slow._first(prop).to_ical().decode()
    if name == "URL":
        return "", name, optional(prop)
    if name == "X-LIFEBOAT-URL":
        return "", name, slow._x_text(alone, name)  # type: ignore[arg-type]
    if name in ("CREATED", "LAST-MODIFIED"):
        return "", name, slow._stamp(prop)
    return "", name, None  # not read (DTSTAMP, another program's X- property): only checked as the decoder does


def _fixed(component: LeanComponent) -> bool:
    """Whether `reader._alarm` makes the same alarm of `component` whatever the event's start and end.

    Why: a sixth of 1x HEAVY's events have an alarm, nearly all "15 minutes before",
    and `_alarm` worked it out for each (icalendar's duration parsed and written back:
    a twelfth of reading the events). It reads the event's times only for a TRIGGER
    that is a date-time (an offset from the start) or RELATED=END (plus the length);
    a block it made an alarm of once without them (or failed to: not remembered)
    gives that alarm again.
    """
    if "X-LIFEBOAT-TRIGGER" in component or "TRIGGER" not in component:
        return True
    prop = component["TRIGGER"]
    return not isinstance(slow._parsed(prop, "dt"), dt.datetime) and (
        (slow._param(prop, "RELATED") or "START").upper() != "END"
    )


def _alarm_component(block: tuple[str, ...]) -> LeanComponent | None:
    """A VALARM's lines as the lean decoder makes them a component, once per distinct block (None: refused)."""
    component: LeanComponent | None = LeanComponent("VALARM")
    try:
        for line in block:
            assert component is not None
            if not component.add(*slow._LEAN.property("VALARM", line)):
                component = None
                break
    except Refused:
        component = None
    if sum(map(len, block)) <= KEPT_LINE_CHARS * 4:
        if len(_ALARMS) >= _KEPT_LINES:
            _ALARMS.clear()
        _ALARMS[block] = component
    return component
