"""Write calendars as iCalendar (RFC 5545) with the icalendar library.

Why streamed: a calendar can hold tens of thousands of events, so `iter_calendar`
yields the header and time zones first and then one chunk per event as the caller's
iterable is consumed; the caller works out the zone set beforehand with a query.
The output is deterministic (same records and export time, same bytes): DTSTAMP is
the record's last change, or the export time the caller passes when the record has
none (RFC 5545 requires one; exporters never read the clock). Every field of the
records survives `exporters.ical.reader`; where RFC 5545 requires a value the record leaves empty (a DISPLAY alarm's
DESCRIPTION, an override's DTSTART) the writer adds one marked `X-LIFEBOAT-DEFAULT`
so the reader can give back `None`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from icalendar import Calendar as VCalendar

from account.canonical import is_utc_zone
from account.records import Alarm, CalendarInfo, Event, Override, When
from account.recurrence import canonical_duration, canonical_rrule, frame
from exporters.ical import lines as ic
from exporters.ical.lines import MARKED, Props, add_token, cn_params, serialise, text_value, token
from exporters.ical.timezones import vtimezone
from exporters.ical.values import (
    clean,
    conform,
    duration_between,
    encode_url,
    fit_end,
    instant,
    normalise,
    url_is_clean,
    value_of,
)

__all__ = [
    "PRODID",
    "calendar_head",
    "calendar_tail",
    "canonical_duration",
    "canonical_rrule",
    "event_chunk",
    "event_depends_on_stamp",
    "event_to_ics",
    "from_stamp_template",
    "iter_calendar",
    "stamp_line",
    "stamp_template",
    "zones_used",
]

PRODID = "-//Lifeboat//Lifeboat export//EN"
DEFAULT_REMINDER = "Reminder"
_END = b"END:VCALENDAR\r\n"


def iter_calendar(
    info: CalendarInfo,
    events: Iterable[Event],
    tzids: Iterable[str],
    *,
    stamp: dt.datetime,
    prodid: str = PRODID,
    home_zone: str = "Etc/UTC",
) -> Iterator[bytes]:
    """Yield one VCALENDAR for a whole calendar, one chunk per event.

    `tzids` must name every zone the events use (see `zones_used`); each gets one
    VTIMEZONE, valid at every instant (see `exporters.ical.timezones`). An event using another
    zone raises ValueError: the caller's zone query is wrong, and a file with a
    dangling TZID would be corrupt. `stamp` (the export time) is the DTSTAMP of events
    that do not say when they last changed.

    A calendar without events still needs one component (RFC 5545 3.4), so it gets
    the VTIMEZONE of `home_zone` (the owner's zone): strict readers accept the file
    and restore recreates the empty calendar with its name, colour and description.
    """
    head, known = calendar_head(info, tzids, prodid=prodid)
    yield head
    written = bool(known)
    for event in events:
        yield event_chunk(event, known, stamp=stamp)
        written = True
    yield calendar_tail(written, home_zone)


def calendar_head(info: CalendarInfo, tzids: Iterable[str], *, prodid: str = PRODID) -> tuple[bytes, frozenset[str]]:
    """The VCALENDAR's opening and its VTIMEZONEs, and the zones written (what `event_chunk` checks against).

    `iter_calendar` in parts, for a caller that has some events' chunks already
    (a repeat export reuses them: `exporters.archive.reuse`); the parts joined are
    exactly `iter_calendar`'s output.
    """
    zones = sorted({z for z in tzids if not is_utc_zone(z)})
    head = _calendar(prodid)
    head.add("X-WR-CALNAME", text_value(info.name))
    if info.description:
        head.add("X-WR-CALDESC", text_value(info.description))
    if info.color:
        head.add("X-APPLE-CALENDAR-COLOR", text_value(info.color))
    return _opening(head) + b"".join(vtimezone(z) for z in zones), frozenset(zones)


def event_chunk(event: Event, known: frozenset[str], *, stamp: dt.datetime) -> bytes:
    """One event's VEVENTs as `iter_calendar` writes them; ValueError if it uses a zone not in `known`."""
    times = _Times.of(event)
    missing = sorted(times.zones() - known)
    if missing:
        raise ValueError(
            f"event {event.uid!r} uses time zone {missing[0]!r}, which is not in the "
            "calendar's zone list: compute tzids with zones_used()"
        )
    return b"".join(c.to_bytes() for c in _components(event, times, stamp))


def event_depends_on_stamp(event: Event) -> bool:
    """Whether the event's chunk holds the export time (it says nowhere when it last changed)."""
    return event.updated is None and event.created is None


_STAMP_SLOT = b"\r\nDTSTAMP:\x00\r\n"  # NUL never occurs in an export (account.canonical): no clash


def stamp_template(chunk: bytes, stamp: dt.datetime) -> bytes | None:
    """`chunk` (an `event_chunk` made at `stamp`) with its DTSTAMP lines made a slot for another time.

    Why: an event that does not say when it changed carries the export time in
    every VEVENT's DTSTAMP, so its bytes differ in every run by those lines only.
    A repeat export fills the slots (`from_stamp_template`) instead of serialising
    again. None if some DTSTAMP line is not `stamp`'s (then it cannot be a template).
    """
    line = stamp_line(stamp)
    if chunk.count(line) != chunk.count(b"\r\nDTSTAMP:") or b"\x00" in chunk:
        return None
    return chunk.replace(line, _STAMP_SLOT)


def from_stamp_template(template: bytes, stamp: dt.datetime | bytes) -> bytes:
    """The chunk `event_chunk` writes at `stamp`, from a `stamp_template` of the same event.

    `stamp` may be given as `stamp_line(stamp)`, worked out once for many events.
    """
    line = stamp if isinstance(stamp, bytes) else stamp_line(stamp)
    return template.replace(_STAMP_SLOT, line)


def stamp_line(stamp: dt.datetime) -> bytes:
    """What fills a `stamp_template`'s slots for `stamp`."""
    return b"\r\nDTSTAMP:" + _export_stamp(stamp).encode("ascii") + b"\r\n"


def calendar_tail(written: bool, home_zone: str) -> bytes:
    """The closing line, after the owner's VTIMEZONE if nothing else was written (see `iter_calendar`)."""
    return (b"" if written else _home_vtimezone(home_zone)) + _END


def _home_vtimezone(tzid: str) -> bytes:
    """The owner's zone as a VTIMEZONE (UTC's if the name is not a known zone)."""
    try:
        return vtimezone(tzid)
    except ValueError:
        return vtimezone("Etc/UTC")


def event_to_ics(event: Event, *, stamp: dt.datetime, prodid: str = PRODID) -> bytes:
    """A standalone VCALENDAR holding one event, its overrides and its zones (a CalDAV PUT body).

    `stamp` is the DTSTAMP if the event does not say when it last changed.
    """
    times = _Times.of(event)
    head = _opening(_calendar(prodid)) + b"".join(vtimezone(z) for z in sorted(times.zones()))
    return head + b"".join(c.to_bytes() for c in _components(event, times, stamp)) + _END


def zones_used(event: Event) -> set[str]:
    """IANA zones the written event refers to by TZID (zones meaning UTC are written as `Z`)."""
    return _Times.of(event).zones()


def _calendar(prodid: str) -> VCalendar:
    cal = VCalendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", clean(prodid).replace("\n", " ") or PRODID)
    cal.add("CALSCALE", "GREGORIAN")
    return cal


def _opening(cal: VCalendar) -> bytes:
    data = serialise(cal)
    assert data.endswith(_END)
    return data[: -len(_END)]


@dataclass(frozen=True)
class _Times:
    """An event's times in canonical form, with recurrence values in the series' frame."""

    start: When
    end: When | None
    rdates: tuple[When, ...]
    exdates: tuple[When, ...]
    overrides: tuple[tuple[Override, When, When | None, When | None], ...]

    @classmethod
    def of(cls, event: Event) -> _Times:
        uid = event.uid
        start = normalise(event.start, uid)
        overrides = []
        for o in event.overrides:
            o_start = normalise(o.start, uid) if o.start else None
            o_end = normalise(o.end, uid) if o.end else None
            rid = conform(normalise(o.recurrence_id, uid), start)
            overrides.append((o, rid, o_start, o_end))
        return cls(
            start=start,
            end=normalise(event.end, uid) if event.end else None,
            rdates=tuple(conform(normalise(w, uid), start) for w in event.rdates),
            exdates=tuple(conform(normalise(w, uid), start) for w in event.exdates),
            overrides=tuple(overrides),
        )

    def all(self) -> list[When]:
        out = [self.start, *self.rdates, *self.exdates]
        for _, rid, o_start, o_end in self.overrides:
            out += [rid] + [w for w in (o_start, o_end) if w]
        return out + ([self.end] if self.end else [])

    def zones(self) -> set[str]:
        return {w.tz for w in self.all() if w.tz and w.datetime is not None}


def _add_end(comp: Props, start: When, end: When) -> None:
    """DTEND as RFC 5545 wants it: same value type as DTSTART, floating only with floating, later.

    An end that breaks those rules (records allow a floating start with a UTC end, or an
    end before the start) is written converted or as a zero DURATION, and kept exactly
    in X-LIFEBOAT-DTEND for the reader.
    """
    proper = fit_end(start, end)
    assert proper is not None
    if proper == end and frame(start) == frame(end) and end == start:
        comp.add("DURATION", ic.duration(dt.timedelta(0)))  # "later than DTSTART" rules out DTEND here
        return
    later = _later(proper, start)
    if later:
        comp.add("DTEND", *ic.when_value(proper))
    else:
        comp.add("DURATION", ic.duration(dt.timedelta(0)))
    if proper != end or not later:
        kind = {"VALUE": "DATE" if end.date is not None else "DATE-TIME"}
        comp.add("X-LIFEBOAT-DTEND", *ic.when_value(end, kind))


def _later(a: When, b: When) -> bool:
    """`instant(a) > instant(b)` without making aware copies when both are in one frame.

    Two dates compare as dates, and two times of one kind and zone as their wall
    times: `instant` gives both the same tzinfo object then, and Python compares
    such times by their fields. Part of the writer's per-event gain (see `_components`).
    """
    if a.date is not None and b.date is not None:
        return a.date > b.date
    x, y = a.datetime, b.datetime
    if x is not None and y is not None and a.tz == b.tz and (x.tzinfo is None) == (y.tzinfo is None):
        return x > y
    return instant(a) > instant(b)


def _components(event: Event, times: _Times, stamp: dt.datetime) -> list[Props]:
    """The series' VEVENT (alarms inside) and one VEVENT per override; `stamp`: see `iter_calendar`."""
    changed = event.updated or event.created
    dtstamp = _stamp(changed) if changed else _export_stamp(stamp)
    master = Props("VEVENT", ic.EVENT_ORDER)
    master.add("UID", ic.text(event.uid))
    master.add("DTSTAMP", dtstamp)
    master.add("DTSTART", *ic.when_value(times.start))
    if times.end:
        _add_end(master, times.start, times.end)
    for name, value in (
        ("SUMMARY", event.summary),
        ("DESCRIPTION", event.description),
        ("LOCATION", event.location),
    ):
        if value:
            master.add(name, ic.text(value))
    if event.rrule:
        try:
            master.add("RRULE", ic.recur(canonical_rrule(event.rrule, times.start)))
        except ValueError:  # not a rule: keep the text where clients will not misread it
            master.add("X-LIFEBOAT-RRULE", ic.text(event.rrule))
    if times.rdates:
        master.add("RDATE", *ic.date_list([value_of(w) for w in times.rdates]))
    if times.exdates:
        master.add("EXDATE", *ic.date_list([value_of(w) for w in times.exdates]))
    if event.status:
        add_token(master, "STATUS", event.status)
    shared = _shared(event)
    components = [master]
    for override, rid, o_start, o_end in times.overrides:
        components.append(_override(event, times, override, rid, o_start, o_end, shared, dtstamp))
    for prop in shared:
        prop(master)
    for alarm in event.alarms:
        master.add_component(_alarm(alarm, event))
    return components


def _override(
    event: Event,
    times: _Times,
    override: Override,
    rid: When,
    start: When | None,
    end: When | None,
    shared: list[Callable[[Props], None]],
    dtstamp: str,
) -> Props:
    """A RECURRENCE-ID component; fields the override leaves None are inherited, marked."""
    comp = Props("VEVENT", ic.EVENT_ORDER)
    comp.add("UID", ic.text(event.uid))
    comp.add("DTSTAMP", dtstamp)
    comp.add("RECURRENCE-ID", *ic.when_value(rid))
    comp.add("DTSTART", *ic.when_value(start or rid, None if start else MARKED))
    if end:
        _add_end(comp, start or rid, end)
    elif times.end:  # keep the series' length, as clients assume for a moved instance
        length = duration_between(times.start, times.end)
        if length >= dt.timedelta(0) and not ((start or rid).date and length.seconds):
            comp.add("DURATION", ic.duration(length), MARKED)
    for name, own, inherited in (
        ("SUMMARY", override.summary, event.summary),
        ("DESCRIPTION", override.description, event.description),
        ("LOCATION", override.location, event.location),
    ):
        if own:
            comp.add(name, ic.text(own))
        elif inherited:
            comp.add(name, ic.text(inherited), MARKED)
    if override.status:
        add_token(comp, "STATUS", override.status)
    elif event.status and token(event.status, "STATUS"):
        comp.add("STATUS", token(event.status, "STATUS") or "", MARKED)
    for prop in shared:
        prop(comp)
    for alarm in event.alarms:
        comp.add_component(_alarm(alarm, event))
    return comp


def _shared(event: Event) -> list[Callable[[Props], None]]:
    """Properties an override repeats from its series, as adders (applied to each component)."""
    adders: list[Callable[[Props], None]] = []

    def add(name: str, value: str) -> None:
        adders.append(lambda comp: comp.add(name, value))

    def addaddress(name: str, email: str, params: dict[str, str]) -> None:
        line = ic.address_line(name, email, params)
        adders.append(lambda comp: comp.add_line(name, line))

    if event.transparency:
        adders.append(lambda comp: add_token(comp, "TRANSP", event.transparency or ""))
    if event.organizer:
        addaddress("ORGANIZER", event.organizer.email, cn_params(event.organizer.name))
    for attendee in event.attendees:
        params = cn_params(attendee.name)
        for key, value in (("ROLE", attendee.role), ("PARTSTAT", attendee.partstat)):
            if value and clean(value):
                params[key] = clean(value)
        addaddress("ATTENDEE", attendee.email, params)
    categories = [clean(c) for c in event.categories if clean(c)]
    if categories:
        add("CATEGORIES", ic.categories(categories))
    if event.url:
        if url_is_clean(event.url):
            add("URL", event.url)
        else:  # write a valid URI, keep the exact text for the reader
            add("URL", encode_url(clean(event.url)))
            add("X-LIFEBOAT-URL", ic.text(event.url))
    if event.created:
        add("CREATED", _stamp(event.created))
    if event.updated:
        add("LAST-MODIFIED", _stamp(event.updated))
    return adders


@lru_cache(maxsize=1024)
def _trigger(trigger: str) -> str:
    """A TRIGGER's value; ValueError if it is not a duration. Remembered: a calendar's alarms
    repeat a few triggers, and parsing one twice through icalendar cost more than the alarm's other lines."""
    return ic.duration_text(canonical_duration(trigger))


def _alarm(alarm: Alarm, event: Event) -> Props:
    comp = Props("VALARM")
    action = token(alarm.action, "ACTION") if alarm.action else None
    comp.add("ACTION", action or "DISPLAY", None if action else MARKED)
    if alarm.action and not action:
        comp.add("X-LIFEBOAT-ACTION", ic.text(alarm.action))
    try:
        comp.add("TRIGGER", _trigger(alarm.trigger))
    except ValueError:  # not a duration: a harmless trigger, the text kept for the reader
        comp.add("TRIGGER", ic.duration(dt.timedelta(0)), MARKED)
        comp.add("X-LIFEBOAT-TRIGGER", ic.text(alarm.trigger))
    kind = (action or "DISPLAY").upper()
    default_text = clean(event.summary) if event.summary else DEFAULT_REMINDER
    if alarm.description and clean(alarm.description):
        comp.add("DESCRIPTION", ic.text(alarm.description))
    elif kind in ("DISPLAY", "EMAIL"):  # RFC 5545 3.6.6: required for these actions
        comp.add("DESCRIPTION", ic.text(default_text), MARKED)
    if kind == "EMAIL":  # also required: a subject and a recipient
        comp.add("SUMMARY", ic.text(default_text), MARKED)
        recipient = event.organizer.email if event.organizer else None
        if recipient:
            comp.add_line("ATTENDEE", ic.address_line("ATTENDEE", recipient, MARKED))
    return comp


_last_stamp: tuple[dt.datetime, str] | None = None


def _export_stamp(stamp: dt.datetime) -> str:
    """`_stamp(stamp)` for the export time, worked out once per export rather than once per event.

    Kept by identity (the one `now` object an export passes to every event), so an
    equal-looking time in another zone or fold never takes another's text.
    """
    global _last_stamp
    last = _last_stamp
    if last is not None and last[0] is stamp:
        return last[1]
    text = _stamp(stamp)
    _last_stamp = (stamp, text)
    return text


def _stamp(value: dt.datetime) -> str:
    """created/updated as UTC whole seconds (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return ic.utc_stamp(value.astimezone(dt.UTC).replace(microsecond=0))
