"""Check an archive as a stranger would: checksums, then every file through an independent parser.

Why independent parsers: our own readers could share a bug with our writers
and still round-trip. vobject reads the cards, both icalendar and the `ical`
package read the calendars, PyYAML reads the notes' front matter. Any failure
is reported with the file name and what is wrong.

Why in chunks: an address book or calendar of a large account is hundreds of
megabytes, and both vobject and icalendar parse a whole text at once. So each
file is streamed from the zip and split at component boundaries (never inside a
folded line: a new component starts at column 0): cards are parsed a few hundred
at a time, and calendars as a sequence of small VCALENDARs, each holding the
file's header and time zones and a run of events, with a series kept together
with its RECURRENCE-ID overrides. The file's own frame (one VCALENDAR, nothing
but VTIMEZONEs and VEVENTs inside it) is checked line by line on the way.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import icalendar
import vobject
import yaml
from ical.calendar_stream import IcsCalendarStream

from errors import InvalidInput
from exporters.archive import ArchiveError, verify_archive
from exporters.manifest import RESERVED_NAMES
from exporters.zipdir import central_directory, member_chunks


@dataclass
class Report:
    files: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.files.items()))
        items = ", ".join(f"{n} {kind}" for kind, n in sorted(self.items.items()))
        return f"  files checked: {kinds}\n  items parsed: {items}"


def check_archive(path: Path) -> Report:
    try:
        manifest = verify_archive(path)
    except ArchiveError as exc:
        raise InvalidInput(str(exc)) from None
    report = Report()
    problems: list[tuple[str, str]] = []
    layout = manifest.meta.get("layout") or {}
    notes = set(layout.get("notes", ()))
    # Two handles: one walks the central directory, the other reads members (no per-member
    # objects, unlike zipfile.ZipFile). verify_archive has checked that the members are
    # exactly the files the manifest lists, with the right sizes and hashes.
    with path.open("rb") as directory, path.open("rb") as data:
        for member in central_directory(directory):
            name = member.name
            if name in RESERVED_NAMES:
                continue
            try:
                stream = io.BufferedReader(_ChunkReader(member_chunks(data, member)))
                _check_member(name, stream, report, is_note=name in notes)
            except Exception as exc:
                problems.append((name, f"{type(exc).__name__}: {exc}"))
    if problems:
        raise InvalidInput(f"{len(problems)} file(s) failed to parse", problems)
    return report


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (a member as `member_chunks` yields it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]  # a view: no copy of the rest
        return size


# Items per parse: large enough that parser start-up does not dominate, small enough for flat memory.
CHUNK = 500


def _check_member(name: str, stream: IO[bytes], report: Report, *, is_note: bool) -> None:
    lower = name.lower()
    if lower.endswith(".vcf") and name.startswith("contacts/"):
        cards = 0
        for chunk in _batches(_blocks(_lines(stream), "VCARD", frame=None), CHUNK):
            for card in vobject.readComponents(io.StringIO("".join(chunk))):
                if not card.contents.get("fn") or not card.contents.get("uid"):
                    raise ValueError("a card lacks FN or UID")
                cards += 1
        report.files["vcf"] += 1
        report.items["cards" if name != "contacts/contacts.vcf" else "address-book cards"] += cards
    elif lower.endswith(".ics") and name.startswith("calendars/"):
        report.items["events"] += _check_calendar(_lines(stream))
        report.files["ics"] += 1
    elif is_note:
        text = stream.read().decode("utf-8")
        if not text.startswith("---\n") or "\n---\n" not in text:
            raise ValueError("the note has no front matter")
        head = text.split("\n---\n", 1)[0][4:]
        fields = yaml.safe_load(head)
        if not isinstance(fields, dict) or "id" not in fields:
            raise ValueError("front matter has no id")
        report.files["md"] += 1
        report.items["notes"] += 1
    else:
        report.files["other"] += 1


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """Physical lines, decoded (a UTF-8 error names the file like any other problem)."""
    for raw in stream:
        yield raw.decode("utf-8")


def _blocks(lines: Iterable[str], kind: str, *, frame: list[str] | None) -> Iterator[list[str]]:
    """Each `BEGIN:<kind>` ... `END:<kind>` block's lines; other top-level lines go to `frame`.

    With `frame` None nothing may stand between blocks but blank lines.
    """
    begin, end = f"BEGIN:{kind}", f"END:{kind}"
    block: list[str] | None = None
    for line in lines:
        bare = line.rstrip("\r\n")
        if block is None:
            if bare.upper() == begin:
                block = [line]
            elif frame is not None:
                frame.append(line)
            elif bare.strip():
                raise ValueError(f"unexpected line outside a {kind}: {bare[:60]!r}")
            continue
        block.append(line)
        if bare.upper() == end:
            yield block
            block = None
    if block is not None:
        raise ValueError(f"the file ends inside a {kind}")


def _batches(blocks: Iterable[list[str]], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    count = 0
    for block in blocks:
        batch += block
        count += 1
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def _check_calendar(lines: Iterable[str]) -> int:
    """Parse a VCALENDAR in runs of events with both parsers; returns the number of VEVENTs."""
    head: list[str] = []
    tail: list[str] = []
    events = 0
    run: list[str] = []
    run_size = 0

    def parse() -> None:
        text = "".join(head + run + ["END:VCALENDAR\r\n"])
        calendar = icalendar.Calendar.from_ical(text)
        IcsCalendarStream.calendar_from_ics(text)
        nonlocal events
        events += len(calendar.walk("VEVENT"))

    frame: list[str] = []
    started = False
    for block in _blocks(_vcalendar_body(lines, tail), "VEVENT", frame=frame):
        if not started:  # everything before the first event: properties and VTIMEZONEs
            head, started = ["BEGIN:VCALENDAR\r\n", *frame], True
            frame.clear()
        if frame:
            raise ValueError(f"unexpected line between events: {frame[0].strip()[:60]!r}")
        override = any(line.upper().startswith("RECURRENCE-ID") for line in block)
        if run_size >= CHUNK and not override:  # an override stays with its series
            parse()
            run, run_size = [], 0
        run += block
        run_size += 1
    if not started:
        head = ["BEGIN:VCALENDAR\r\n", *frame]
    elif frame:
        raise ValueError(f"unexpected line after the events: {frame[0].strip()[:60]!r}")
    parse()
    if tail:
        raise ValueError(f"unexpected text after END:VCALENDAR: {tail[0].strip()[:60]!r}")
    return events


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
