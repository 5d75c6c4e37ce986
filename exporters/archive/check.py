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

Why a memo (`memo_dir`, `exporters.archive.check_memo`): a user's archives
repeat day after day with ~1 % of items changed. A card, a note or a calendar
event group (a series with its overrides, in its file's header and time zones)
whose bytes an earlier check verified with the same parsers is only counted;
the rest is parsed as above, the new event groups gathered into runs of their
own. Both processes read one snapshot of the memo, so they cut the same runs.
The memo moves where calendar runs are cut, and which of two problems in one
file is met first depends on that; so a calendar that fails with the memo is
checked again in full without it, and the report is the one a check without a
memo gives. New keys are written only after the whole check passed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import vobject
import yaml

from errors import InvalidInput, UserError, not_utf8
from exporters.archive.check_calendar import check_calendar
from exporters.archive.check_memo import MemoFile, MemoUnusable, Verdicts, stamp
from exporters.archive.check_parts import LOOKUP_AHEAD, ahead, blocks
from exporters.archive.check_parts import Share as Share  # `check_share` takes one
from exporters.archive.check_parts import Steps as _Steps
from exporters.archive.counts import EVENTS_MEANING, counts_line
from exporters.archive.file_kinds import OUTSIDE_LAYOUT, count_problems, file_kind
from exporters.archive.helper import Helper
from exporters.archive.manifest import RESERVED_NAMES, ArchiveError
from exporters.archive.places import ADDRESS_BOOK
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
# Bump when a check changes what it accepts or how it counts: the memo's verdicts of older checks then go.
CHECK_VERSION = 2  # 2: event groups keyed without their DTSTAMP value


@dataclass
class Report:
    """What `check_archive` read: files by kind, items parsed, and what verification passed over."""

    files: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    skipped: str = ""  # folder entries and macOS extras of a zip made again from the unpacked files
    top_folder: str = ""  # the one folder around everything, dropped ("" when there was none)
    # With a memo: items (cards, VEVENTs, notes) parsed now, and those earlier checks had verified.
    memo: bool = False
    fresh: bool = False  # everything parsed on purpose (`verify --fresh`): "none were verified before" is untrue
    parsed: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
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
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.files.items()))
        lines = [f"  files checked: {kinds}", f"  items parsed: {counts_line(self.counts())}"]
        moved = self.items["changed occurrences"]
        lines.append(f"  events: {EVENTS_MEANING} ({moved:,} such, {self.items['events'] + moved:,} VEVENTs in all)")
        lines.append(f"  contacts: the same {self.items['cards']:,} cards again in contacts/cards/, one file each")
        if self.top_folder:
            lines.append(f"  read inside the top folder {self.top_folder!r} (the zip was made around it)")
        if self.skipped:
            lines.append(f"  ignored: {self.skipped}")
        return "\n".join(lines)

    def memo_line(self) -> str:
        """How much was parsed now and how much earlier checks had verified ("" without a memo)."""
        if not self.memo:
            return ""
        parsed, known = self.parsed.total(), self.known.total()
        if self.fresh:
            return f"parsed everything (--fresh): {parsed:,} items, remembered for the next check"
        if not known:
            return f"parsed {parsed:,} items; none were verified before with the same parser versions"
        return f"parsed {parsed:,} items; {known:,} were verified before with the same parser versions"


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
    memo: dict[str, Any] = field(default_factory=dict)  # what it looked up and verified (`Verdicts.to_json`)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Partial:
        return cls(
            files=dict(data["files"]),
            items=dict(data["items"]),
            failed=[Outcome(**o) for o in data["failed"]],
            shared=[Outcome(**o) for o in data["shared"]],
            memo=dict(data.get("memo") or {}),
        )


def check_archive(
    path: Path,
    *,
    processes: int | None = None,
    memo_dir: Path | None = None,
    fresh: bool = False,
    keys: KeyRing | None = None,
) -> Report:
    """Verify the archive at `path`, parse every file independently and compare the figures with the manifest.

    Raises `InvalidInput` naming each file that fails, or a figure that does
    not match `manifest.json`'s counts (each counted as `exporters.archive.counts` says).
    `processes` (1 or 2) says how many processes parse; by default two for an
    archive of `TWO_PROCESSES_FROM` bytes or more on a machine with two cores.
    `memo_dir` (None: no memo) holds the verdicts of earlier checks
    (`exporters.archive.check_memo`): items they verified are not parsed again,
    and when this check passes, what it verified is added; `fresh` parses
    everything and still adds it. The problems and figures are the same with
    and without a memo.
    `exporters.archive.helper.HelperFailed` if the second process dies: the
    archive was then not fully checked, which says nothing about it. `keys`
    checks manifest.json.sig (`exporters.archive.reader.verify_archive`); the
    report's `signature` says what it found.
    """
    count = processes if processes is not None else processes_for(path)
    if count not in (1, 2):
        raise ValueError(f"processes must be 1 or 2, not {count}")
    memo = None if memo_dir is None else MemoFile.open(memo_dir, stamp(CHECK_VERSION, yaml=_YAML_LOADER.__name__))
    with memo or nullcontext():
        with memo.snapshot() if memo is not None and not fresh else nullcontext() as source:
            verdicts = memo.verdicts(source) if memo is not None and memo.usable else None
            try:
                archive, partials = _check_shares(path, count, CHUNK, verdicts, keys)
            except MemoUnusable as exc:
                assert memo is not None
                memo.unusable(exc)
                verdicts = None
                archive, partials = _check_shares(path, count, CHUNK, None, keys)
            finally:
                if verdicts is not None:
                    verdicts.close()
        report = Report(
            skipped=archive.survey.skipped(),
            top_folder=archive.survey.prefix().rstrip("/"),
            signature=archive.signature,
        )
        problems = _merge(partials, report)
        problems += count_problems(archive.manifest.counts, report.counts())
        if problems:
            raise InvalidInput(f"{len(problems)} problem(s) found", problems)
        if memo is not None and verdicts is not None:
            for partial in partials[1:]:
                verdicts.add_json(partial.memo)
            report.memo, report.parsed, report.known = True, verdicts.parsed, verdicts.known
            report.fresh = fresh
            memo.record(verdicts.new, verdicts.seen)
    return report


def _check_shares(
    path: Path, count: int, chunk: int, verdicts: Verdicts | None, keys: KeyRing | None
) -> tuple[ArchiveReader, list[Partial]]:
    """Check `path` in `count` processes; the archive as this process opened it, and each share's `Partial`."""
    if count == 1:
        archive = _open(path, keys)
        with archive:
            return archive, [_check_share(archive, Share(), chunk, verdicts)]
    memo_args = [] if verdicts is None else [verdicts.prefix.hex(), str(verdicts.source or "-")]
    # The helper starts first, so that its start-up overlaps this process's own read-back check.
    with Helper(WORKER, [os.fspath(path), "1", "2", str(chunk), *memo_args]) as helper:
        archive = _open(path, keys)
        with archive:
            partials = [_check_share(archive, Share(0, 2), chunk, verdicts)]
        answer = helper.result()
    if "invalid" in answer:  # the file changed under us between the two openings
        raise InvalidInput(answer["invalid"])
    if "memo_unusable" in answer:
        raise MemoUnusable(answer["memo_unusable"])
    partials.append(Partial.from_json(answer["partial"]))
    return archive, partials


def processes_for(path: Path) -> int:
    """Two processes for an archive of `TWO_PROCESSES_FROM` bytes or more where two cores are ours."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        size = Path(path).stat().st_size
    except OSError:
        return 1  # `open_archive` says what is wrong with it
    return 2 if cores >= 2 and size >= TWO_PROCESSES_FROM else 1


def check_share(path: Path, share: Share, chunk: int, verdicts: Verdicts | None = None) -> Partial:
    """Open and verify the archive at `path` and check `share` of it, with `chunk` events a calendar run.

    What the helper process runs; every share must cut the calendars at the same
    events, so all look up the same snapshot of the memo (`verdicts`).
    """
    archive = _open(path)
    with archive:
        return _check_share(archive, share, chunk, verdicts)


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


def _shared(index: int, name: str, kind: str, check: Callable[[_Steps], dict[str, int]]) -> Outcome:
    steps = _Steps()
    try:
        return Outcome(index, name, kind, check(steps))
    except MemoUnusable:
        raise
    except Exception as exc:
        return Outcome(index, name, kind, failed_at=steps.at, problem=_problem(exc))


def _problem(exc: Exception) -> str:
    """A file's problem as verify prints it: our own words as they are, a parser's with its error's name."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def _check_share(archive: ArchiveReader, share: Share, chunk: int, verdicts: Verdicts | None = None) -> Partial:
    layout = archive.manifest.meta.get("layout") or {}
    notes = set(layout.get("notes", ()))
    memo = _CardMemo()
    partial = Partial()
    files, items = Counter[str](), Counter[str]()

    def read(name: str) -> IO[bytes]:
        return io.BufferedReader(_ChunkReader(archive.member_chunks(name)))

    def book(steps: _Steps) -> dict[str, int]:
        lines = _lines(read(ADDRESS_BOOK), "the vCard file")
        return {"address-book cards": _check_cards(lines, share, steps, memo, verdicts)}

    def calendar(steps: _Steps, name: str, index: int) -> dict[str, int]:
        try:
            events, changed = _check_calendar(
                _lines(read(name), "the calendar file"), share, steps, index, chunk, verdicts
            )
        except MemoUnusable:
            raise
        except Exception:
            if verdicts is None or not verdicts.consults:
                raise
            # The memo moved the cuts between runs: the problem a check without it meets first, at its step.
            steps.at = 0
            _check_calendar(_lines(read(name), "the calendar file"), Share(), steps, index, chunk)
            raise  # (both parsers read every group again in other runs and passed: still a problem)
        return {"events": events, "changed occurrences": changed}

    # The address book first, so that its cards stand for the card files before them in the zip.
    first = _shared(-1, ADDRESS_BOOK, "vcf", book)
    entries = [(i, e, file_kind(e.path, notes)) for i, e in enumerate(archive.files_in_zip_order())]
    alone = [
        (i, e, kind)
        for i, e, kind in entries
        if e.path not in RESERVED_NAMES and kind != "ics" and e.path != ADDRESS_BOOK
        if share.owns(_key(bytes.fromhex(e.sha256)))
    ]
    known = _known_files(alone, memo, verdicts)
    # Otherwise in the zip's own order: each member is read straight after the previous one.
    for index, entry, kind in entries:  # `kind`: what restore sorts files by too
        name = entry.path
        if name in RESERVED_NAMES:
            continue
        if name == ADDRESS_BOOK:
            first.index = index
            partial.shared.append(first)
        elif kind == "ics":
            partial.shared.append(_shared(index, name, "ics", functools.partial(calendar, name=name, index=index)))
        elif share.owns(_key(bytes.fromhex(entry.sha256))):
            try:
                _check_alone(name, kind, entry.sha256, read, memo, known, verdicts, files, items)
            except MemoUnusable:
                raise
            except Exception as exc:
                partial.failed.append(Outcome(index, name, "", problem=_problem(exc)))
    partial.files, partial.items = dict(files), dict(items)
    return partial


def _known_files(
    entries: Iterable[tuple[int, Any, str]], memo: _CardMemo, verdicts: Verdicts | None
) -> dict[str, set[bytes]]:
    """By kind ("vcf", "md"), SHA-256s of the card files and notes among `entries` that earlier checks verified.

    A card file with the bytes of a card the address book held is that card
    already (`_CardMemo`) and is not looked up. Kept apart by kind: the same
    bytes verified as a note say nothing about them as a card.
    """
    if verdicts is None or not verdicts.consults:
        return {}
    cards, notes = [], []
    for _, entry, kind in entries:
        digest = bytes.fromhex(entry.sha256)
        if kind == "vcf" and digest not in memo:
            cards.append(digest)
        elif kind == "md":
            notes.append(digest)
    return {"vcf": verdicts.known_digests("card", cards), "md": verdicts.known_digests("note", notes)}


def _check_alone(
    name: str,
    kind: str,
    sha256: str,
    read: Callable[[str], IO[bytes]],
    memo: _CardMemo,
    known: Mapping[str, set[bytes]],
    verdicts: Verdicts | None,
    files: Counter[str],
    items: Counter[str],
) -> None:
    """Check a file one share checks whole: a card file, a note or an attachment; refuse anything else.

    `known`: SHA-256s of files earlier checks verified, by kind (`_known_files`), taken as they found them.
    """
    digest = bytes.fromhex(sha256)
    if kind == "vcf":
        if digest in memo:  # a card of the address book, byte for byte
            cards = 1
        elif digest in known.get("vcf", ()):  # a card an earlier check verified
            cards = 1
            assert verdicts is not None
            verdicts.known["cards"] += 1
        else:
            cards = _check_cards(_lines(read(name), "the vCard file"), Share(), _Steps(), memo, verdicts)
        files["vcf"] += 1
        items["cards"] += cards
    elif kind == "md":
        if digest in known.get("md", ()):
            assert verdicts is not None
            verdicts.known["notes"] += 1
        else:
            _check_note(read(name))
            if verdicts is not None:
                verdicts.verified(verdicts.key("note", digest), "notes", 1)
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


def _check_cards(
    lines: Iterable[str], share: Share, steps: _Steps, memo: _CardMemo, verdicts: Verdicts | None = None
) -> int:
    """Parse the cards of `share` one at a time; return how many there are (checked by any share).

    Cards earlier checks verified (`verdicts`) count as they found them: one card each.
    Each card takes its steps whether parsed or known, so the memo moves no problem.
    """
    cards = 0
    for batch in ahead(blocks(lines, "VCARD", frame=None), LOOKUP_AHEAD):
        texts = ["".join(block) for block in batch]
        digests = [hashlib.sha256(text.encode("utf-8")).digest() for text in texts]
        known = set()
        if verdicts is not None:
            known = verdicts.known_digests("card", [d for d in digests if share.owns(_key(d))])
        for text, digest in zip(texts, digests, strict=True):
            steps.tick()
            if share.owns(_key(digest)):
                if verdicts is not None and digest in known:
                    found = 1
                    verdicts.known["cards"] += 1
                else:
                    found = _parse_cards(text)
                    if verdicts is not None:
                        if found == 1:
                            verdicts.verified(verdicts.key("card", digest), "cards", 1)
                        else:
                            verdicts.parsed["cards"] += found
                if found == 1:
                    memo.add(digest)
                cards += found
            steps.tick()
    return cards


def _parse_cards(text: str) -> int:
    """How many cards vobject finds in `text`; `ValueError` if one lacks FN or UID."""
    found = 0
    for card in vobject.readComponents(io.StringIO(text)):
        if not card.contents.get("fn") or not card.contents.get("uid"):
            raise ValueError("a card lacks FN or UID")
        found += 1
    return found


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


def _check_calendar(
    lines: Iterable[str],
    share: Share | None = None,
    steps: _Steps | None = None,
    first: int = 0,
    chunk: int = 0,
    verdicts: Verdicts | None = None,
) -> tuple[int, int]:
    """`exporters.archive.check_calendar.check_calendar`: all of it (by default), in runs of `chunk` (0: `CHUNK`)."""
    return check_calendar(lines, share or Share(), steps or _Steps(), first, chunk or CHUNK, verdicts)
