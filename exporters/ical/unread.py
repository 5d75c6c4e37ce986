"""What of a VEVENT no `Event` keeps, for a restore to say (`exporters.ical.reader.stream_calendar`'s `unread`).

Why apart from the reader: only a restore asks (the fidelity drill reads our own
files, which lose nothing), so the reader's hot paths carry none of it; and the
rules are the reader's `_event`, `_override` and `_alarm` turned round: what they
read is kept, anything else is lost.
"""

from __future__ import annotations

from collections.abc import Callable

from exporters.ical.values import MARK

# Told what a calendar file holds that no record keeps: (item, names), the item an event's UID, or "" for the
# calendar itself.
Unread = Callable[[str, list[str]], None]
OURS = "X-LIFEBOAT-"  # our writer's own marks: read where they matter, never another program's data


# What `_event` reads of a series VEVENT, what `_override` reads of an override, what `_alarm` reads of a
# VALARM (X-LIFEBOAT-* aside, which are our writer's and read where they matter). DTSTAMP is read nowhere but
# says only when the file was made (RFC 5545 3.8.7.2): not the event's data. Any other property is lost.
_OVERRIDE_READ = frozenset(
    {"UID", "DTSTAMP", "RECURRENCE-ID", "DTSTART", "DTEND", "DURATION", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS"}
)
_SERIES_ONLY = frozenset({"RRULE", "RDATE", "EXDATE"})  # read of a series, not of an override
# Read of a series; an override that repeats them (our writer repeats its series' in each) loses only what differs.
_SHARED = frozenset({"TRANSP", "ORGANIZER", "ATTENDEE", "CATEGORIES", "URL", "CREATED", "LAST-MODIFIED"})
_OWN, _SERIES, _RECURRENCE = 1, 2, 3  # a VEVENT property's part: read of any, shared with the series, the series'
_EVENT_PARTS = {
    **dict.fromkeys(_OVERRIDE_READ, _OWN),
    **dict.fromkeys(_SHARED, _SERIES),
    **dict.fromkeys(_SERIES_ONLY, _RECURRENCE),
}
_ALARM_READ = frozenset({"ACTION", "TRIGGER", "DESCRIPTION"})
_ALARM_DEFAULTS = frozenset({"SUMMARY", "ATTENDEE"})  # our writer adds them, marked, to an EMAIL alarm


class EventLosses:
    """Tells `unread` what of each VEVENT no `Event` keeps: by name, per UID, as the stream meets them.

    Why a class: an override loses its series' properties (ATTENDEE, an alarm...)
    only where they differ from its series', which came just before it.
    """

    def __init__(self, unread: Unread) -> None:
        self._unread = unread
        self._series: tuple[str, frozenset[str | tuple[str, ...]]] | None = None  # a series' UID, shared parts

    def tell(self, uid: str, lines: list[str]) -> None:
        """`lines`: one VEVENT, BEGIN to END."""
        lost: list[str] = []
        shared: list[str | tuple[str, ...]] = []  # what an override repeats of its series: lines, alarms
        series_only: list[str] = []
        override = False
        nested: list[str] | None = None  # the lines of the component (VALARM...) being read
        for line in lines[1:-1]:
            # The name ends at the first ';' or ':' (a quoted parameter may hold ':', never before the name's end).
            name = line.partition(":")[0].partition(";")[0]
            if nested is None:
                kind = _EVENT_PARTS.get(name)
                if kind is None:
                    name = name.upper()
                    kind = _EVENT_PARTS.get(name)
                if kind == _OWN:
                    override = override or name == "RECURRENCE-ID"
                elif kind == _SERIES:
                    shared.append(line)
                elif kind == _RECURRENCE:
                    series_only.append(name)
                elif name == "BEGIN":
                    nested = [line]
                    if line[6:].strip().upper() != "VALARM":
                        lost.append(f"a {line[6:].strip().upper()}")
                elif not name.startswith(OURS):
                    lost.append(name)
                continue
            name = name.upper()
            nested.append(line)
            if name == "END" and line[4:].strip().upper() == nested[0][6:].strip().upper():
                shared.append(tuple(nested))
                nested = None
            elif name != "BEGIN" and not _alarm_keeps(name, line) and nested[0].upper() == "BEGIN:VALARM":
                lost.append(f"{name} of an alarm")
        if override:
            series = self._series[1] if self._series is not None and self._series[0] == uid else frozenset()
            lost += [f"{name} of an override" for name in series_only]
            lost += [f"{_shared_name(part)} of an override" for part in shared if part not in series]
        else:
            self._series = (uid, frozenset(shared))
        if lost:
            self._unread(uid, lost)


def _alarm_keeps(name: str, line: str) -> bool:
    """Whether `_alarm` reads the VALARM property `name` (its line `line`), or our writer added it."""
    if name in _ALARM_READ or name.startswith(OURS):
        return True
    return name in _ALARM_DEFAULTS and MARK + "=TRUE" in line[: line.find(":")].upper()


def _shared_name(part: str | tuple[str, ...]) -> str:
    """How a loss names a line an override repeats of its series (its property's name), or an alarm."""
    if isinstance(part, tuple):
        return part[0][6:].strip().upper()
    return part.partition(":")[0].partition(";")[0].upper()
