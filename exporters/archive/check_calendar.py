"""The independent check of one calendar file: its frame line by line, its events in runs through both parsers.

Why runs: icalendar and `ical` parse a whole text at once, and a large
calendar is hundreds of megabytes; so events are parsed as a sequence of small
VCALENDARs, each holding the file's header and time zones and a run of events,
with a series kept together with its RECURRENCE-ID overrides (an *event group*).
Run n is parsed by the share (`check_parts.Share`) that `first + n` picks.

With a memo that is consulted (`check_memo.Verdicts`), groups an earlier check
verified in the same header are only counted, and the runs hold the others;
`exporters.archive.check` says why the problems stay those of a check without it.

Why a group's key leaves out its DTSTAMP value: an event with no time of its
own carries the export's time as DTSTAMP (RFC 5545 requires one), so such
events have new bytes in every archive and the memo would never know them
again (a generated account's calendars are all like that). The key holds
`DTSTAMP:*` instead when the line is exactly `DTSTAMP:YYYYMMDDTHHMMSSZ` with a
real UTC date and time, which is checked here (`_stamp_free`); any other form
stays in the key as it is, and is parsed. Both parsers read such a line as a
UTC date-time and nothing else in the event depends on its value, so one valid
stamp passes wherever another does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

import icalendar
from ical.calendar_stream import IcsCalendarStream

from exporters.archive.check_memo import Verdicts
from exporters.archive.check_parts import LOOKUP_AHEAD, Share, Steps, ahead, blocks


def check_calendar(
    lines: Iterable[str], share: Share, steps: Steps, first: int, chunk: int, verdicts: Verdicts | None
) -> tuple[int, int]:
    """Parse a VCALENDAR in runs of events with both parsers; return (events, changed occurrences).

    Events are the VEVENTs without RECURRENCE-ID (a repeating event counts
    once); the others are its moved or changed occurrences (`exporters.archive.counts`).
    Run n is parsed by the share that `first + n` picks; the others only read it. Runs
    hold `chunk` events, more where overrides follow their series.
    With `verdicts` that look keys up, event groups an earlier check verified
    are only counted and the runs hold the others.
    """
    runs = _Runs(share, steps, first, chunk, verdicts)
    tail: list[str] = []
    events = _event_blocks(lines, runs, tail)
    if verdicts is not None and verdicts.consults:
        for batch in ahead(_groups(events), LOOKUP_AHEAD):
            keys = [runs.key(group) for group in batch]
            found = verdicts.lookup(keys)
            for group, key in zip(batch, keys, strict=True):
                if key in found:
                    runs.known(key, found[key])
                    continue
                if runs.size >= runs.chunk:
                    runs.parse()
                for block in group:
                    runs.add(block, key)
        if runs.size or not runs.started:  # a file without events: its header is parsed alone
            runs.parse()
    else:
        for block, override in events:
            if runs.size >= runs.chunk and not override:  # an override stays with its series
                runs.parse()
            runs.add(block, runs.hasher(block, override))
        runs.parse()
    if tail:
        raise ValueError(f"unexpected text after END:VCALENDAR: {tail[0].strip()[:60]!r}")
    return runs.events, runs.changed


class _Runs:
    """One calendar's runs as `check_calendar` cuts them: the events of the run being read, and the counts so far.

    With `verdicts`, the run's event groups (a series and its overrides) are
    kept beside it, each with its key, so that a run both parsers accepted adds
    each group's verdict to the memo.
    """

    def __init__(self, share: Share, steps: Steps, first: int, chunk: int, verdicts: Verdicts | None) -> None:
        self.share, self.steps, self.first, self.chunk, self.verdicts = share, steps, first, chunk, verdicts
        self.head: list[str] = []
        self.started = False  # an event was read (the header is complete)
        self.header = hashlib.sha256()  # of the header: the context every group's key includes
        self.events = self.changed = self.runs = 0
        self.size = 0  # events in the run, whoever parses it
        self.lines: list[str] = []  # the run's events, when this share parses it
        self.groups: list[list[Any]] = []  # [key or hasher, events] of each group in `lines`

    def start(self, head: list[str]) -> None:
        self.head, self.started = head, True
        self.header = hashlib.sha256("".join(head).encode("utf-8"))

    def mine(self) -> bool:
        return self.share.owns(self.first + self.runs)

    def key(self, group: list[list[str]]) -> bytes:
        """An event group's key: its text in the context of this calendar's header."""
        assert self.verdicts is not None
        digest = hashlib.sha256(self.header.digest())
        for block in group:
            digest.update(_stamp_free(block).encode("utf-8"))
        return self.verdicts.key("events", digest.digest())

    def hasher(self, block: list[str], override: bool) -> Any:
        """The key of the group `block` is part of, as it is read (None without verdicts)."""
        if self.verdicts is None or not self.mine():
            return None
        if override and self.groups:  # an override stays with its series
            hasher = self.groups[-1][0]
        else:
            hasher = hashlib.sha256(self.header.digest())
        hasher.update(_stamp_free(block).encode("utf-8"))
        return hasher

    def add(self, block: list[str], key: Any) -> None:
        """`block` joins the run; `key` is its group's (a new group when it differs from the last one's)."""
        if self.mine():
            self.lines += block
            if key is not None:
                if self.groups and self.groups[-1][0] is key:
                    self.groups[-1][1] += 1
                else:
                    self.groups.append([key, 1])
        self.size += 1

    def known(self, key: bytes, verdict: tuple[int, int]) -> None:
        """A group an earlier check verified: counted once, by the share of the run being read."""
        if self.mine() and self.verdicts is not None:
            self.events += verdict[0]
            self.changed += verdict[1]
            self.verdicts.vouched(key, "events", sum(verdict))

    def parse(self) -> None:
        self.steps.tick()
        if self.mine():
            text = "".join([*self.head, *self.lines, "END:VCALENDAR\r\n"])
            calendar = icalendar.Calendar.from_ical(text)
            IcsCalendarStream.calendar_from_ics(text)
            moved = [("RECURRENCE-ID" in event) for event in calendar.walk("VEVENT")]
            self.changed += sum(moved)
            self.events += len(moved) - sum(moved)
            self._verified(calendar, moved)
        self.runs += 1
        self.lines, self.groups, self.size = [], [], 0
        self.steps.tick()

    def _verified(self, calendar: Any, moved: list[bool]) -> None:
        """Each group's verdict from a run both parsers accepted: its VEVENTs, in order, one a block."""
        if self.verdicts is None:
            return
        top = [c for c in calendar.subcomponents if c.name == "VEVENT"]
        if len(top) != len(moved) or len(moved) != sum(n for _, n in self.groups):
            self.verdicts.parsed["events"] += len(moved)  # not one VEVENT a block: nothing to keep
            return
        at = 0
        for key, n in self.groups:
            changed = sum(moved[at : at + n])
            at += n
            digest = key if isinstance(key, bytes) else self.verdicts.key("events", key.digest())
            self.verdicts.verified(digest, "events", n, (n - changed, changed))


_STAMP = re.compile(r"DTSTAMP:(\d{8}T\d{6})Z\r?\n")


def _stamp_free(block: list[str]) -> str:
    """The event's text for its key: a well-formed DTSTAMP line's value left out (see the module docstring)."""
    lines = []
    for line in block:
        found = _STAMP.fullmatch(line)
        if found is not None:
            try:
                dt.datetime.strptime(found.group(1), "%Y%m%dT%H%M%S")
            except ValueError:
                pass  # not a real date and time: kept in the key, and parsed
            else:
                line = "DTSTAMP:*" + line[found.end(1) + 1 :]  # its line ending kept
        lines.append(line)
    return "".join(lines)


def _event_blocks(lines: Iterable[str], runs: _Runs, tail: list[str]) -> Iterator[tuple[list[str], bool]]:
    """Each VEVENT's lines, and whether it is an override; the calendar's frame checked on the way.

    What stands before the first event (properties and VTIMEZONEs) is the
    header `runs` starts with; anything between or after the events is a problem.
    """
    frame: list[str] = []
    for block in blocks(_vcalendar_body(lines, tail), "VEVENT", frame=frame):
        if not runs.started:  # everything before the first event: properties and VTIMEZONEs
            runs.start(["BEGIN:VCALENDAR\r\n", *frame])
            frame.clear()
        if frame:
            raise ValueError(f"unexpected line between events: {frame[0].strip()[:60]!r}")
        yield block, any(line.upper().startswith("RECURRENCE-ID") for line in block)
    if not runs.started:
        runs.head = ["BEGIN:VCALENDAR\r\n", *frame]
    elif frame:
        raise ValueError(f"unexpected line after the events: {frame[0].strip()[:60]!r}")


def _groups(events: Iterable[tuple[list[str], bool]]) -> Iterator[list[list[str]]]:
    """The blocks of each event group: a series and the overrides that follow it (never split into two runs)."""
    group: list[list[str]] = []
    for block, override in events:
        if group and not override:
            yield group
            group = []
        group.append(block)
    if group:
        yield group


def _vcalendar_body(lines: Iterable[str], tail: list[str]) -> Iterator[str]:
    """The lines between BEGIN:VCALENDAR and END:VCALENDAR; anything after the end goes to `tail`."""
    it = iter(lines)
    first = next(it, "")
    if first.rstrip("\r\n").upper() != "BEGIN:VCALENDAR":
        raise ValueError("the file does not start with BEGIN:VCALENDAR")
    for line in it:
        if line.rstrip("\r\n").upper() == "END:VCALENDAR":
            tail.extend(x for x in it if x.strip())
            return
        yield line
    raise ValueError("the file has no END:VCALENDAR")
