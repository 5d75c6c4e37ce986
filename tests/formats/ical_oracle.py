"""The iCalendar event writer as it was before `exporters.ical.lines`: an oracle for tests.

Why kept: `exporters.ical.writer` now assembles event content lines itself for speed (see
`exporters.ical.lines`). This is the previous writer, which built `icalendar.Event`
components and let icalendar order, encode and parameterise every property; the
new writer must produce the same bytes for every event (tests/formats/test_ical_content.py).
Do not use it outside tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from icalendar import Alarm as VAlarm
from icalendar import Component
from icalendar import Event as VEvent
from icalendar.parser import Parameters
from icalendar.prop import vCalAddress, vCategory, vDDDTypes, vDuration, vRecur, vText

from account.records import Alarm, Event, Override, When
from account.recurrence import canonical_duration, canonical_rrule, frame
from exporters.ical.lines import cn_params, serialise, token
from exporters.ical.values import (
    MARK,
    clean,
    duration_between,
    encode_url,
    fit_end,
    instant,
    mailto,
    url_is_clean,
    value_of,
)
from exporters.ical.writer import DEFAULT_REMINDER, _Times


def event_bytes(event: Event, stamp: dt.datetime) -> bytes:
    """The VEVENTs (series and overrides) of one event, as the Component writer wrote them.

    `stamp` (the export time) is the DTSTAMP of an event that does not say when it changed.
    """
    return b"".join(serialise(c) for c in _components(event, _Times.of(event), stamp))


class QuotedParams(Parameters):
    # icalendar quotes CN only for a space or "'"; its lenient parser strips an unquoted
    # TAB at the edges, so quote CN always and the tokens when they hold odd characters.
    always_quoted = (*Parameters.always_quoted, "CN")  # type: ignore[assignment]  # icalendar types its tuple by length
    quote_also = {"ROLE": " '\t\\", "PARTSTAT": " '\t\\"}


def address(email: str, params: dict[str, str]) -> vCalAddress:
    value = vCalAddress(mailto(email))
    value.params = QuotedParams(params)
    return value


def add_token(comp: Component, name: str, value: str) -> None:
    """An enumerated property; a value strict parsers would reject goes to X-LIFEBOAT-<name>."""
    valid = token(value, name)
    if valid:
        comp.add(name, valid)
    elif clean(value):
        comp.add(f"X-LIFEBOAT-{name}", text(value))


_BOM = "\ufeff".encode()


def escape_text(value: str) -> bytes:
    """RFC 5545 TEXT escaping, written out here so the oracle does not share the writer's."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n").encode()


def _keep_bom(data: bytes) -> bytes:
    # icalendar decodes each written value as utf-8-sig, dropping one leading U+FEFF
    return _BOM + data if data.startswith(_BOM) else data


class Text(vText):
    def to_ical(self) -> bytes:
        return _keep_bom(escape_text(str(self)))


class Categories(vCategory):
    def to_ical(self) -> bytes:
        return _keep_bom(b",".join(escape_text(str(c)) for c in self.cats))


def text(value: str) -> vText:
    return Text(clean(value))


def marked() -> dict[str, str]:
    # a new dict each time: icalendar adds TZID/VALUE to the dict it is given
    return {MARK: "TRUE"}


def _add_end(comp: Component, start: When, end: When) -> None:
    """DTEND as RFC 5545 wants it: same value type as DTSTART, floating only with floating, later.

    An end that breaks those rules (records allow a floating start with a UTC end, or an
    end before the start) is written converted or as a zero DURATION, and kept exactly
    in X-LIFEBOAT-DTEND for the reader.
    """
    proper = fit_end(start, end)
    assert proper is not None
    if proper == end and frame(start) == frame(end) and end == start:
        comp.add("DURATION", dt.timedelta(0))  # "later than DTSTART" rules out DTEND here
        return
    if instant(proper) > instant(start):
        comp.add("DTEND", value_of(proper))
    else:
        comp.add("DURATION", dt.timedelta(0))
    if proper != end or instant(proper) <= instant(start):
        exact = vDDDTypes(value_of(end))
        exact.params["VALUE"] = "DATE" if end.date is not None else "DATE-TIME"
        comp.add("X-LIFEBOAT-DTEND", exact)


def _components(event: Event, times: _Times, stamp: dt.datetime) -> list[Component]:
    master = VEvent()
    master.add("UID", text(event.uid))
    master.add("DTSTAMP", _stamp(event.updated or event.created or stamp))
    master.add("DTSTART", value_of(times.start))
    if times.end:
        _add_end(master, times.start, times.end)
    for name, value in (
        ("SUMMARY", event.summary),
        ("DESCRIPTION", event.description),
        ("LOCATION", event.location),
    ):
        if value:
            master.add(name, text(value))
    if event.rrule:
        try:
            master.add("RRULE", vRecur.from_ical(canonical_rrule(event.rrule, times.start)))
        except ValueError:  # not a rule: keep the text where clients will not misread it
            master.add("X-LIFEBOAT-RRULE", text(event.rrule))
    if times.rdates:
        master.add("RDATE", [value_of(w) for w in times.rdates])
    if times.exdates:
        master.add("EXDATE", [value_of(w) for w in times.exdates])
    if event.status:
        add_token(master, "STATUS", event.status)
    shared = _shared(event)
    components: list[Component] = [master]
    for override, rid, o_start, o_end in times.overrides:
        components.append(_override(event, times, override, rid, o_start, o_end, shared, stamp))
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
    shared: list[Callable[[Component], None]],
    stamp: dt.datetime,
) -> VEvent:
    """A RECURRENCE-ID component; fields the override leaves None are inherited, marked."""
    comp = VEvent()
    comp.add("UID", text(event.uid))
    comp.add("DTSTAMP", _stamp(event.updated or event.created or stamp))
    comp.add("RECURRENCE-ID", value_of(rid))
    comp.add("DTSTART", value_of(start or rid), parameters=None if start else marked())  # type: ignore[arg-type]  # None is add()'s own default
    if end:
        _add_end(comp, start or rid, end)
    elif times.end:  # keep the series' length, as clients assume for a moved instance
        length = duration_between(times.start, times.end)
        if length >= dt.timedelta(0) and not ((start or rid).date and length.seconds):
            comp.add("DURATION", vDuration(length), parameters=marked())
    for name, own, inherited in (
        ("SUMMARY", override.summary, event.summary),
        ("DESCRIPTION", override.description, event.description),
        ("LOCATION", override.location, event.location),
    ):
        if own:
            comp.add(name, text(own))
        elif inherited:
            comp.add(name, text(inherited), parameters=marked())
    if override.status:
        add_token(comp, "STATUS", override.status)
    elif event.status and token(event.status, "STATUS"):
        comp.add("STATUS", token(event.status, "STATUS"), parameters=marked())
    for prop in shared:
        prop(comp)
    for alarm in event.alarms:
        comp.add_component(_alarm(alarm, event))
    return comp


def _shared(event: Event) -> list[Callable[[Component], None]]:
    """Properties an override repeats from its series, as adders (applied to each component)."""
    adders: list[Callable[[Component], None]] = []

    def add(name: str, value: object) -> None:
        adders.append(lambda comp: comp.add(name, value))

    def addaddress(name: str, email: str, params: dict[str, str]) -> None:
        adders.append(lambda comp: comp.add(name, address(email, params)))

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
        add("CATEGORIES", Categories(categories))
    if event.url:
        if url_is_clean(event.url):
            add("URL", event.url)
        else:  # write a valid URI, keep the exact text for the reader
            add("URL", encode_url(clean(event.url)))
            add("X-LIFEBOAT-URL", text(event.url))
    if event.created:
        add("CREATED", _stamp(event.created))
    if event.updated:
        add("LAST-MODIFIED", _stamp(event.updated))
    return adders


def _alarm(alarm: Alarm, event: Event) -> VAlarm:
    comp = VAlarm()
    action = token(alarm.action, "ACTION") if alarm.action else None
    comp.add("ACTION", action or "DISPLAY", parameters=None if action else marked())  # type: ignore[arg-type]  # None is add()'s own default
    if alarm.action and not action:
        comp.add("X-LIFEBOAT-ACTION", text(alarm.action))
    try:
        comp.add("TRIGGER", vDuration.from_ical(canonical_duration(alarm.trigger)))
    except ValueError:  # not a duration: a harmless trigger, the text kept for the reader
        comp.add("TRIGGER", dt.timedelta(0), parameters=marked())
        comp.add("X-LIFEBOAT-TRIGGER", text(alarm.trigger))
    kind = (action or "DISPLAY").upper()
    default_text = clean(event.summary) if event.summary else DEFAULT_REMINDER
    if alarm.description and clean(alarm.description):
        comp.add("DESCRIPTION", text(alarm.description))
    elif kind in ("DISPLAY", "EMAIL"):  # RFC 5545 3.6.6: required for these actions
        comp.add("DESCRIPTION", text(default_text), parameters=marked())
    if kind == "EMAIL":  # also required: a subject and a recipient
        comp.add("SUMMARY", text(default_text), parameters=marked())
        recipient = event.organizer.email if event.organizer else None
        if recipient:
            comp.add("ATTENDEE", address(recipient, marked()))
    return comp


def _stamp(value: dt.datetime) -> dt.datetime:
    """created/updated as UTC whole seconds (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0)
