"""What each file of an archive is, by its path, and the figures of manifest.json's counts the files bear out.

Why one place: `verify` (`exporters.archive.check`) and restore
(`exporters.archive.reader`) must refuse the same archives. Restore reads only
what the layout points to (the address book, the calendars and notes it lists,
the attachments each note links), so a file added to an archive, listed in
manifest.json and SHA256SUMS but referenced by nothing, would be left behind
without a word while `verify` refuses it because its counts do not match. Both
now sort files with `file_kind`, compare with `count_problems`, and refuse a file
outside the layout (`OUTSIDE_LAYOUT`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from exporters.archive.counts import KEYS
from exporters.archive.manifest import MANIFEST_NAME

# The fix for a file Lifeboat did not write: whoever added it also rewrote manifest.json and SHA256SUMS.
AS_WRITTEN = "use a copy of the archive as Lifeboat wrote it"
ADDED_FIX = f"it was added after the export: {AS_WRITTEN}"
OUTSIDE_LAYOUT = f"not a file of a Lifeboat archive (contacts/, calendars/, notes/); {ADDED_FIX}"
# Which of `KEYS` counts the files of each kind (the others count items inside files, which need parsing).
FILE_FIGURES = {"calendars": "ics", "notes": "md", "attachments": "attachment"}


def file_kind(path: str, notes: Container[str]) -> str:
    """`vcf` (the address book or a card file), `ics` (a calendar), `md` (a note: `notes` lists it),
    `attachment` (any other file under notes/) or `other` (outside the layout; refused).
    """
    lower = path.lower()
    if lower.endswith(".vcf") and path.startswith("contacts/"):
        return "vcf"
    if lower.endswith(".ics") and path.startswith("calendars/"):
        return "ics"
    if path in notes:
        return "md"
    if path.startswith("notes/"):
        return "attachment"
    return "other"


def file_figures(files: Mapping[str, int]) -> dict[str, int]:
    """The figures that files of each kind (counted as `file_kind` names them) make, without parsing any."""
    return {key: files.get(kind, 0) for key, kind in FILE_FIGURES.items()}


def count_problems(listed: Mapping[str, int], found: Mapping[str, int]) -> list[tuple[str, str]]:
    """Each figure of manifest.json's counts (`listed`) that `found` holds and does not bear out."""
    return [
        (MANIFEST_NAME, f"counts say {listed[key]} {key}, the files hold {found[key]}")
        for key in KEYS
        if key in listed and key in found and listed[key] != found[key]
    ]
