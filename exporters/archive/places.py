"""Where an archive keeps each kind of data (format version 1): the names, apart from how `layout` fills them.

Why apart from `exporters.archive.layout`: reading and checking an archive needs
these names alone, and `layout` brings every writer with it (iCalendar, Markdown,
the archive writer and its item cache). verify's second process
(`exporters.archive.check_worker`) imported all of them for `ADDRESS_BOOK`.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporters.archive.counts import KINDS
from exporters.archive.manifest import ArchiveError

ADDRESS_BOOK = "contacts/contacts.vcf"
CARDS_DIR = "contacts/cards"
CALENDARS_DIR = "calendars"
NOTES_DIR = "notes"


def included_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """`kinds` in archive order; an unknown kind or none at all is an `ArchiveError` (a caller's bug)."""
    wanted = set(kinds)
    unknown = sorted(wanted - set(KINDS))
    if unknown or not wanted:
        raise ArchiveError(f"kinds must be a non-empty subset of {', '.join(KINDS)}, not {sorted(wanted)}")
    return tuple(kind for kind in KINDS if kind in wanted)
