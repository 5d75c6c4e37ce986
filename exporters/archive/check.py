"""Check an archive as a stranger would: checksums, then every file through an independent parser.

Why independent parsers: our own readers could share a bug with our writers
and still round-trip. vobject reads the cards, both icalendar and the `ical`
package read the calendars, PyYAML reads the notes' front matter. Any failure
is reported with the file name and what is wrong.

Why streamed: an address book or calendar of a large account is hundreds of
megabytes, and both vobject and icalendar parse a whole text at once. So each
file is streamed from the zip and split at component boundaries (never inside a
folded line: a new component starts at column 0): cards are parsed one at a
time, and calendars as a sequence of small VCALENDARs, each holding the file's
header and time zones and a run of events, with a series kept together with its
RECURRENCE-ID overrides. The file's own frame (one VCALENDAR, nothing but
VTIMEZONEs and VEVENTs inside it) is checked line by line on the way.

Why each card alone: vobject costs the same per card alone as in runs of 500
(1.76 s against 1.78 s CPU for 3,000 HEAVY cards), and a card known by its
bytes need not be parsed twice. Every card is in the archive twice (the address
book, and its own file in contacts/cards/), so the address book is checked
first and a card file whose listed SHA-256 is that of a card the address book
held, which parsed as one card with FN and UID, counts as that card: the
parser would read the same bytes to the same result, and `open_archive` has
already checked the file's bytes against that SHA-256. This halves the vobject
work (7 of 44 s CPU at 1x HEAVY). Any other card file is parsed in full.

Why two processes: the parsers are pure Python, so one process uses one core.
A large archive is checked in two *shares*, one per process (`check_archive`,
`exporters.archive.helper`): each card of the address book and each other
file goes to the share its SHA-256 picks, each run of a calendar to the share
its number picks. Both processes read the address book and every calendar
(cheap next to parsing them), so both see the same frame errors at the same
*step*; each process stops a file at its first problem, and where both report
one for the same file, the earlier step wins. So the problems, their order and
the figures are the same as one process finds (tests/formats/test_check_split.py).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import icalendar
import vobject
import yaml
from ical.calendar_stream import IcsCalendarStream

from errors import InvalidInput, UserError, not_utf8
from exporters.archive.counts import EVENTS_MEANING, counts_line
from exporters.archive.file_kinds import OUTSIDE_LAYOUT, count_problems, file_kind
from exporters.archive.helper import Helper
from exporters.archive.layout import ADDRESS_BOOK
from exporters.archive.manifest import RESERVED_NAMES, ArchiveError
from exporters.archive.reader import ArchiveReader, open_archive
from exporters.archive.signature import UNSIGNED, KeyRing, SignatureCheck

# PyYAML's libyaml loader: the same safe constructor, its scanner in C (14x faster, docs/performance.md).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Events per calendar run: the zones are parsed again with each run, 1.3 s CPU a calendar at
# 500 (of ~12 s); 1,000 halves that for ~6 MB more peak RSS per process (2,000: ~18 MB more).
CHUNK = 1000
# Cards the address book lends to the card files; past this the rest are parsed again (~100 bytes each).
CARD_MEMO_LIMIT = 250_000
# From this archive size on, two processes. The second costs ~0.6 s CPU more in all (its interpreter
# and imports, its own read-back check, reading the shared files): 0.16 -> 0.76 s at 0.005x HEAVY,
# 3.0 -> 3.65 s at 0.1x (`bench/verify_archive.py --threshold`). Below 4 MiB (~0.08x HEAVY, ~2.5 s CPU
# in one process) halving the parse does not pay for that by enough on a machine whose other core is busy.
TWO_PROCESSES_FROM = 4 << 20
WORKER = "exporters.archive.check_worker"


@dataclass
class Report:
    """What `check_archive` read: files by kind, items parsed, and what verification passed over."""

    files: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    skipped: str = ""  # folder entries and macOS extras of a zip made again from the unpacked files
    top_folder: str = ""  # the one folder around everything, dropped ("" when there was none)
    signature: SignatureCheck = UNSIGNED  # what manifest.json.sig says (`exporters.archive.signature`)

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


@dataclass(frozen=True)
class Share:
    """The part of the work one process does: share `index` of `count` (0 of 1 is all of it)."""

    index: int = 0
    count: int = 1

    def owns(self, key: int) -> bool:
        return key % self.count == self.index


@dataclass
class Outcome:
    """One file's result in one share: what it holds, or the step where it failed and why."""

    index: int  # its place in the zip's order
    name: str
    kind: str  # what it counts as in `Report.files`
    items: dict[str, int] = field(default_factory=dict)
    failed_at: int = -1  # the step (see `_Steps`); -1 when it passed
    problem: str = ""


@dataclass
class Partial:
    """What one share found: sums over the files it checked alone, and its part of the shared ones."""

    files: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    failed: list[Outcome] = field(default_factory=list)  # files it checked alone that failed
    shared: list[Outcome] = field(default_factory=list)  # address book and calendars: every share reads them

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Partial:
        return cls(
            files=dict(data["files"]),
            items=dict(data["items"]),
            failed=[Outcome(**o) for o in data["failed"]],
            shared=[Outcome(**o) for o in data["shared"]],
        )


def check_archive(path: Path, *, processes: int | None = None, keys: KeyRing | None = None) -> Report:
    """Verify the archive at `path`, parse every file independently and compare the figures with the manifest.

    Raises `InvalidInput` naming each file that fails, or a figure that does
    not match `manifest.json`'s counts (each counted as `exporters.archive.counts` says).
    `processes` (1 or 2) says how many processes parse; by default two for an
    archive of `TWO_PROCESSES_FROM` bytes or more on a machine with two cores.
    `exporters.archive.helper.HelperFailed` if the second process dies: the
    archive was then not fully checked, which says nothing about it. `keys`
    checks manifest.json.sig (`exporters.archive.reader.verify_archive`); the
    report's `signature` says what it found.
    """
    count = processes if processes is not None else processes_for(path)
    if count not in (1, 2):
        raise ValueError(f"processes must be 1 or 2, not {count}")
    chunk = CHUNK
    if count == 1:
        archive = _open(path, keys)
        with archive:
            partials = [_check_share(archive, Share(), chunk)]
    else:
        # The helper starts first, so that its start-up overlaps this process's own read-back check.
        with Helper(WORKER, [os.fspath(path), "1", "2", str(chunk)]) as helper:
            archive = _open(path, keys)
            with archive:
                partials = [_check_share(archive, Share(0, 2), chunk)]
            answer = helper.result()
        if "invalid" in answer:  # the file changed under us between the two openings
            raise InvalidInput(answer["invalid"])
        partials.append(Partial.from_json(answer["partial"]))
    report = Report(
        skipped=archive.survey.skipped(), top_folder=archive.survey.prefix().rstrip("/"), signature=archive.signature
    )
    problems = _merge(partials, report)
    problems += count_problems(archive.manifest.counts, report.counts())
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) found", problems)
    return report


def processes_for(path: Path) -> int:
    """Two processes for an archive of `TWO_PROCESSES_FROM` bytes or more where two cores are ours."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        size = Path(path).stat().st_size
    except OSError:
        return 1  # `open_archive` says what is wrong with it
    return 2 if cores >= 2 and size >= TWO_PROCESSES_FROM else 1


def check_share(path: Path, share: Share, chunk: int) -> Partial:
    """Open and verify the archive at `path` and check `share` of it, with `chunk` events a calendar run.

    What the helper process runs; every share must cut the calendars at the same events.
    """
    archive = _open(path)
    with archive:
        return _check_share(archive, share, chunk)


def _open(path: Path, keys: KeyRing | None = None) -> ArchiveReader:
    try:
        return open_archive(path, keys=keys)
    except ArchiveError as exc:
        raise InvalidInput(str(exc)) from None


def _merge(partials: list[Partial], report: Report) -> list[tuple[str, str]]:
    """Add the shares' figures to `report`; return each failed file's problem in the zip's order."""
    problems: list[tuple[int, str, str]] = []
    by_file: dict[int, list[Outcome]] = {}
    for partial in partials:
        report.files.update(partial.files)
        report.items.update(partial.items)
        problems += [(o.index, o.name, o.problem) for o in partial.failed]
        for outcome in partial.shared:
            by_file.setdefault(outcome.index, []).append(outcome)
    for index, parts in by_file.items():
        failures = [o for o in parts if o.failed_at >= 0]
        if failures:  # the first problem one process would have met
            first = min(failures, key=lambda o: o.failed_at)
            problems.append((index, first.name, first.problem))
            continue
        report.files[parts[0].kind] += 1
        for outcome in parts:
            report.items.update(outcome.items)
    return [(name, problem) for _, name, problem in sorted(problems, key=lambda p: p[0])]


class _Steps:
    """Numbers the points of one file's check in reading order, the same in every share.

    Each parse of a card or a calendar run takes one step, whichever share
    parses it, and the reading between two parses another: a problem is at the
    step it was met on, so the earliest over the shares is the one a single
    process would have stopped at.
    """

    def __init__(self) -> None:
        self.at = 0

    def tick(self) -> None:
        self.at += 1


def _shared(index: int, name: str, kind: str, check: Callable[[_Steps], dict[str, int]]) -> Outcome:
    steps = _Steps()
    try:
        return Outcome(index, name, kind, check(steps))
    except Exception as exc:
        return Outcome(index, name, kind, failed_at=steps.at, problem=_problem(exc))


def _problem(exc: Exception) -> str:
    """A file's problem as verify prints it: our own words as they are, a parser's with its error's name."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def _check_share(archive: ArchiveReader, share: Share, chunk: int) -> Partial:
    layout = archive.manifest.meta.get("layout") or {}
    notes = set(layout.get("notes", ()))
    memo = _CardMemo()
    partial = Partial()
    files, items = Counter[str](), Counter[str]()

    def read(name: str) -> IO[bytes]:
        return io.BufferedReader(_ChunkReader(archive.member_chunks(name)))

    def book(steps: _Steps) -> dict[str, int]:
        return {"address-book cards": _check_cards(_lines(read(ADDRESS_BOOK), "the vCard file"), share, steps, memo)}

    # The address book first, so that its cards stand for the card files before them in the zip.
    first = _shared(-1, ADDRESS_BOOK, "vcf", book)
    # Otherwise in the zip's own order: each member is read straight after the previous one.
    for index, entry in enumerate(archive.files_in_zip_order()):
        name = entry.path
        if name in RESERVED_NAMES:
            continue
        kind = file_kind(name, notes)  # what restore sorts files by too
        if name == ADDRESS_BOOK:
            first.index = index
            partial.shared.append(first)
        elif kind == "ics":

            def calendar(steps: _Steps, name: str = name, index: int = index) -> dict[str, int]:
                events, changed = _check_calendar(_lines(read(name), "the calendar file"), share, steps, index, chunk)
                return {"events": events, "changed occurrences": changed}

            partial.shared.append(_shared(index, name, "ics", calendar))
        elif share.owns(_key(bytes.fromhex(entry.sha256))):
            try:
                _check_alone(name, kind, entry.sha256, read, memo, files, items)
            except Exception as exc:
                partial.failed.append(Outcome(index, name, "", problem=_problem(exc)))
    partial.files, partial.items = dict(files), dict(items)
    return partial


def _check_alone(
    name: str,
    kind: str,
    sha256: str,
    read: Callable[[str], IO[bytes]],
    memo: _CardMemo,
    files: Counter[str],
    items: Counter[str],
) -> None:
    """Check a file one share checks whole: a card file, a note or an attachment; refuse anything else."""
    if kind == "vcf":
        known = bytes.fromhex(sha256) in memo  # a card of the address book, byte for byte
        cards = 1 if known else _check_cards(_lines(read(name), "the vCard file"), Share(), _Steps(), memo)
        files["vcf"] += 1
        items["cards"] += cards
    elif kind == "md":
        _check_note(read(name))
        files["md"] += 1
        items["notes"] += 1
    elif kind == "attachment":
        files["attachment"] += 1
    else:  # restore would leave it behind unread
        raise InvalidInput(OUTSIDE_LAYOUT)


def _check_note(stream: IO[bytes]) -> None:
    try:
        text = stream.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(not_utf8("the note", exc.start)) from None
    if not text.startswith("---\n") or "\n---\n" not in text:
        raise ValueError("the note has no front matter")
    head = text.split("\n---\n", 1)[0][4:]
    fields = yaml.load(head, Loader=_YAML_LOADER)  # noqa: S506  (a safe loader, in C where PyYAML has libyaml)
    if not isinstance(fields, dict) or "id" not in fields:
        raise ValueError("front matter has no id")


class _CardMemo:
    """SHA-256s of cards that parsed as one card with FN and UID, up to `CARD_MEMO_LIMIT` of them."""

    def __init__(self) -> None:
        self._digests: set[bytes] = set()

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._digests

    def add(self, digest: bytes) -> None:
        if len(self._digests) < CARD_MEMO_LIMIT:
            self._digests.add(digest)


def _key(digest: bytes) -> int:
    """Which share a SHA-256 picks: its first four bytes as a number."""
    return int.from_bytes(digest[:4], "big")


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (a member as `member_chunks` yields it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")
        self._given = 0  # bytes handed out: `tell`, for the offset of a byte that is not UTF-8

    def tell(self) -> int:
        return self._given

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
        self._given += size
        return size


def _check_cards(lines: Iterable[str], share: Share, steps: _Steps, memo: _CardMemo) -> int:
    """Parse the cards of `share` one at a time; return how many there are (checked by any share)."""
    cards = 0
    for block in _blocks(lines, "VCARD", frame=None):
        text = "".join(block)
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        steps.tick()
        if share.owns(_key(digest)):
            found = 0
            for card in vobject.readComponents(io.StringIO(text)):
                if not card.contents.get("fn") or not card.contents.get("uid"):
                    raise ValueError("a card lacks FN or UID")
                found += 1
            if found == 1:
                memo.add(digest)
            cards += found
        steps.tick()
    return cards


def _lines(stream: IO[bytes], what: str = "the file") -> Iterator[str]:
    """Physical lines, decoded; bytes that are not UTF-8 are a problem of the file, at their offset in it.

    The offset is found only then (the stream's position, less the line): nothing is counted per line.
    """
    for raw in stream:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(not_utf8(what, stream.tell() - len(raw) + exc.start)) from None
        yield line


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


def _check_calendar(
    lines: Iterable[str], share: Share = Share(), steps: _Steps | None = None, first: int = 0, chunk: int = 0
) -> tuple[int, int]:
    """Parse a VCALENDAR in runs of events with both parsers; return (events, changed occurrences).

    Events are the VEVENTs without RECURRENCE-ID (a repeating event counts
    once); the others are its moved or changed occurrences (`exporters.archive.counts`).
    Run n is parsed by the share that `first + n` picks; the others only read it. Runs
    hold `chunk` events (0: `CHUNK`), more where overrides follow their series.
    """
    steps = steps or _Steps()
    head: list[str] = []
    tail: list[str] = []
    events = changed = runs = 0
    run: list[str] = []
    run_size = 0
    chunk = chunk or CHUNK

    def parse() -> None:
        nonlocal events, changed, runs
        steps.tick()
        if share.owns(first + runs):
            text = "".join(head + run + ["END:VCALENDAR\r\n"])
            calendar = icalendar.Calendar.from_ical(text)
            IcsCalendarStream.calendar_from_ics(text)
            for event in calendar.walk("VEVENT"):
                if "RECURRENCE-ID" in event:
                    changed += 1
                else:
                    events += 1
        runs += 1
        steps.tick()

    frame: list[str] = []
    started = False
    for block in _blocks(_vcalendar_body(lines, tail), "VEVENT", frame=frame):
        if not started:  # everything before the first event: properties and VTIMEZONEs
            head, started = ["BEGIN:VCALENDAR\r\n", *frame], True
            frame.clear()
        if frame:
            raise ValueError(f"unexpected line between events: {frame[0].strip()[:60]!r}")
        override = any(line.upper().startswith("RECURRENCE-ID") for line in block)
        if run_size >= chunk and not override:  # an override stays with its series
            parse()
            run, run_size = [], 0
        if share.owns(first + runs):  # a run another share parses is only counted
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
