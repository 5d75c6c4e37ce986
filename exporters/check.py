"""Check an archive as a stranger would: checksums, then every file through an independent parser.

Why independent parsers: our own readers could share a bug with our writers
and still round-trip. vobject reads the cards, both icalendar and the `ical`
package read the calendars, PyYAML reads the notes' front matter. Any failure
is reported with the file name and what is wrong.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from zipfile import ZipFile

import icalendar
import vobject
import yaml
from ical.calendar_stream import IcsCalendarStream

from errors import InvalidInput
from exporters.archive import ArchiveError, verify_archive


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
    with ZipFile(path) as archive:
        for name in manifest.paths:
            try:
                _check_member(name, archive.read(name), report, is_note=name in notes)
            except Exception as exc:
                problems.append((name, f"{type(exc).__name__}: {exc}"))
    if problems:
        raise InvalidInput(f"{len(problems)} file(s) failed to parse", problems)
    return report


def _check_member(name: str, data: bytes, report: Report, *, is_note: bool) -> None:
    lower = name.lower()
    if lower.endswith(".vcf") and name.startswith("contacts/"):
        cards = list(vobject.readComponents(io.StringIO(data.decode("utf-8"))))
        for card in cards:
            if not card.contents.get("fn") or not card.contents.get("uid"):
                raise ValueError("a card lacks FN or UID")
        report.files["vcf"] += 1
        report.items["cards" if name != "contacts/contacts.vcf" else "address-book cards"] += len(cards)
    elif lower.endswith(".ics") and name.startswith("calendars/"):
        text = data.decode("utf-8")
        calendar = icalendar.Calendar.from_ical(text)
        events = calendar.walk("VEVENT")
        IcsCalendarStream.calendar_from_ics(text)
        report.files["ics"] += 1
        report.items["events"] += len(events)
    elif is_note:
        text = data.decode("utf-8")
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
