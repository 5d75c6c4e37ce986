"""Write a verified archive into a folder in one call, as the archive tests and benches need.

Why here: the exporters only write bytes to a file object and verify them;
placing the file (temporary name, fsync, read back, link without overwriting)
is `store.archive_files`' job, driven by `jobs.export.write_verified`. Tests of
the archive's bytes want all of that in one step against a plain folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from exporters.archive.writer import DeflatedEntry, Entry
from jobs.export import ArchiveInfo, write_verified
from store.archive_files import LocalArchiveFiles


def write_archive(
    dest_dir: Path,
    name: str,
    entries: Iterable[Entry | DeflatedEntry],
    meta: Mapping[str, Any],
    now: dt.datetime,
    *,
    layout: Callable[[], Mapping[str, Any]] | None = None,
) -> ArchiveInfo:
    """Write, verify and place `dest_dir/name`; see `jobs.export.write_verified`."""
    return write_verified(LocalArchiveFiles(Path(dest_dir)), name, entries, meta, now, layout=layout)


def local_path(info: ArchiveInfo) -> Path:
    """The file `write_archive` placed (a folder store always has one; a bucket would not)."""
    assert info.path is not None
    return info.path
