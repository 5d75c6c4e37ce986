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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import icalendar
import vobject
import yaml
from ical.calendar_stream import IcsCalendarStream

from errors import InvalidInput
from exporters.archive.counts import EVENTS_MEANING, KEYS, counts_line
from exporters.archive.manifest import MANIFEST_NAME, RESERVED_NAMES, ArchiveError
from exporters.archive.reader import open_archive


@dataclass
class Report:
    """What `check_archive` read: files by kind, items parsed, and what verification passed over."""

    files: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    skipped: str = ""  # folder entries and macOS extras of a zip made again from the unpacked files
    top_folder: str = ""  # the one folder around everything, dropped ("" when there was none)

    def counts(self) -> dict[str, int]:
        """The figures as `exporters.archive.counts` defines them, from what the parsers found."""
        return {
            "contacts": self.items["address-book cards"],
            "calendars": self.files["ics"],
            "events": self.items["events"],
            "notes": self.items["notes"],
            "attachments": self.files["attachment"],
        }

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.files.items()))
        lines = [f"  files checked: {kinds}", f"  items parsed: {counts_line(self.counts())}"]
        moved = self.items["changed occurrences"]
        lines.append(f"  events: {EVENTS_MEANING} ({moved} such, {self.items['events'] + moved} VEVENTs in all)")
        lines.append(f"  contacts: the same {self.items['cards']} cards again in contacts/cards/, one file each")
        if self.top_folder:
            lines.append(f"  read inside the top folder {self.top_folder!r} (the zip was made around it)")
        if self.skipped:
            lines.append(f"  ignored: {self.skipped}")
        return "\n".join(lines)


def check_archive(path: Path) -> Report:
    """Verify the archive at `path`, parse every file independently and compare the figures with the manifest.

    Raises `InvalidInput` naming each file that fails, or a figure that does
    not match `manifest.json`'s counts (each counted as `exporters.archive.counts` says).
    """
    try:
        archive = open_archive(path)
    except ArchiveError as exc:
        raise InvalidInput(str(exc)) from None
    report = Report(skipped=archive.survey.skipped(), top_folder=archive.survey.prefix().rstrip("/"))
    problems: list[tuple[str, str]] = []
    with archive:
        layout = archive.manifest.meta.get("layout") or {}
        notes = set(layout.get("notes", ()))
        # In the zip's own order: each member is read straight after the previous one.
        for name in archive.paths_in_zip_order():
            if name in RESERVED_NAMES:
                continue
            try:
                stream = io.BufferedReader(_ChunkReader(archive.member_chunks(name)))
                _check_member(name, stream, report, is_note=name in notes)
            except Exception as exc:
                problems.append((name, f"{type(exc).__name__}: {exc}"))
        problems += _count_problems(archive.manifest.counts, report.counts())
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) found", problems)
    return report


def _count_problems(listed: Mapping[str, int], found: Mapping[str, int]) -> list[tuple[str, str]]:
    """Each figure of manifest.json's counts that the files do not bear out."""
    return [
        (MANIFEST_NAME, f"counts say {listed[key]} {key}, the files hold {found[key]}")
        for key in KEYS
        if key in listed and listed[key] != found[key]
    ]


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
        events, changed = _check_calendar(_lines(stream))
        report.items["events"] += events
        report.items["changed occurrences"] += changed
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
    elif name.startswith("notes/"):
        report.files["attachment"] += 1
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


def _check_calendar(lines: Iterable[str]) -> tuple[int, int]:
    """Parse a VCALENDAR in runs of events with both parsers; return (events, changed occurrences).

    Events are the VEVENTs without RECURRENCE-ID (a repeating event counts
    once); the others are its moved or changed occurrences (`exporters.archive.counts`).
    """
    head: list[str] = []
    tail: list[str] = []
    events = changed = 0
    run: list[str] = []
    run_size = 0

    def parse() -> None:
        text = "".join(head + run + ["END:VCALENDAR\r\n"])
        calendar = icalendar.Calendar.from_ical(text)
        IcsCalendarStream.calendar_from_ics(text)
        nonlocal events, changed
        for event in calendar.walk("VEVENT"):
            if "RECURRENCE-ID" in event:
                changed += 1
            else:
                events += 1

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
    return events, changed


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
