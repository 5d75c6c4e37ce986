"""Read an archive written by `exporters.bundle` back into records (for restore).

The archive is verified first (checksums, safe paths); then each format's
reader parses its files, following the layout recorded in the manifest.
Members are read through `ArchiveReader`, which knows the archive paths they
stand for: in a zip the user made again from the unpacked files, the zip's own
names may differ (no UTF-8 flag, a top folder), and `zipfile` would not find them.
"""

from __future__ import annotations

from pathlib import Path

from account.records import Account, Calendar
from exporters.archive import open_archive
from exporters.bundle import ADDRESS_BOOK
from exporters.ical_read import read_calendar
from exporters.markdown_read import read_note
from exporters.vcard_read import read_vcards


def read_account(path: Path, *, email: str | None = None) -> Account:
    """Records of the archive at `path`; `email` overrides the archive's owner."""
    with open_archive(path) as archive:
        meta = archive.manifest.meta
        layout = meta["layout"]
        member = archive.open_member
        contacts = tuple(read_vcards(member(layout.get("address_book", ADDRESS_BOOK))))
        calendars: list[Calendar] = [read_calendar(member(name)) for name in layout["calendars"]]
        notes = tuple(read_note(name, member(name), member) for name in layout["notes"])
    return Account(
        email=(email or meta["user"]).strip().lower(),
        display_name=meta.get("display_name"),
        timezone=meta.get("timezone", "UTC"),
        contacts=contacts,
        calendars=tuple(calendars),
        notes=notes,
    )
