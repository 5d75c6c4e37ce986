"""Read an archive written by `exporters.bundle` back into records (for restore).

The archive is verified first (checksums, safe paths); then each format's
reader parses its files, following the layout recorded in the manifest.
"""

from __future__ import annotations

from pathlib import Path
from zipfile import ZipFile

from account.records import Account, Calendar
from exporters.archive import verify_archive
from exporters.bundle import ADDRESS_BOOK
from exporters.ical_read import read_calendar
from exporters.markdown_read import read_note
from exporters.vcard_read import read_vcards


def read_account(path: Path, *, email: str | None = None) -> Account:
    """Records of the archive at `path`; `email` overrides the archive's owner."""
    manifest = verify_archive(path)
    meta = manifest.meta
    layout = meta["layout"]
    with ZipFile(path) as archive:

        def member(name: str) -> bytes:
            return archive.read(name)

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
