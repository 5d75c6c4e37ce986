"""Every change an export made, a page at a time, read from its archive's manifest.json (issue 16).

Why from the archive: the run's row keeps only the first few changes
(`store.fidelity`), and manifest.json, signed with the archive, is the whole
list; a user who is not technical cannot open it, so the archive's changes page
and the API (`web.archive_pages`, `web.api.run_views`) show it in pages. A 1x
HEAVY account lists 14,628, and a parsed manifest keeps at most `KEPT_CHANGES`
of them (memory), so each page asks for its own window of the section, read
(and each item checked) up to its end: the file list after it is not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporters.archive.changes import SECTION, Change, count_of, summary
from exporters.archive.manifest import KEPT_CHANGES
from jobs.download_links import archive_changes
from store import Archive
from store.archive_files import ArchiveFiles

PER_PAGE = 100
assert PER_PAGE <= KEPT_CHANGES, "a page must fit in the window one manifest read keeps"
NOT_LISTED = "Not listed: this archive was made before exports listed what they changed"


@dataclass(frozen=True)
class ChangePage:
    """One page of an archive's changes: `items` are numbers `first + 1` onwards of `count`."""

    count: int | None  # None: an archive made before manifest.json had the section
    summary: str  # "14,628 changes"; "0 changes: every item is carried exactly"
    page: int
    pages: int
    first: int  # index of items[0] in the whole list
    items: list[Change]


def change_page(files: ArchiveFiles, archive: Archive, page: int) -> ChangePage:
    """Page `page` (from 1) of the archive's changes, `PER_PAGE` to a page; past the last: the last.

    Raises what `archive_changes` raises for an archive that is missing or not
    one. A page past the last (a stale or typed address) costs a second read,
    since only reading the list tells how long it is.
    """
    page = max(1, page)
    section = archive_changes(files, archive, (page - 1) * PER_PAGE)
    count, words = changes_summary({SECTION: section} if section is not None else {})
    pages = max(1, -(-(count or 0) // PER_PAGE))
    if page > pages:
        return change_page(files, archive, pages)
    entries = section.get("items", []) if section is not None else []
    return ChangePage(
        count=count,
        summary=words,
        page=page,
        pages=pages,
        first=(page - 1) * PER_PAGE,
        items=[_change(entry) for entry in entries[:PER_PAGE]],
    )


def changes_summary(meta: Mapping[str, Any]) -> tuple[int | None, str]:
    """How many changes a parsed manifest's meta lists (None: made before the section), and that in words."""
    count = count_of(meta)
    return count, NOT_LISTED if count is None else summary(count)


def _change(entry: Mapping[str, Any]) -> Change:
    """An entry `check_change` passed; one from before `original` was kept has none ("")."""
    return Change(
        kind=entry["kind"],
        item=entry["item"],
        field=entry["field"],
        path=entry["path"],
        reason=entry["reason"],
        original=entry.get("original", ""),
    )
