"""Which archives to delete when a user keeps only the newest N.

Why a pure function: deleting a user's backups is the one destructive thing
this backend does, so the choice is made here, from a listing, where it can be
tested without a store. Only keys in Lifeboat's own layout
(`<prefix>/<yyyy>/<mm>/<name>.zip`) are ever candidates; anything else a user
keeps under the prefix is left alone, and the archive just delivered always
survives, whatever its date or the store's clock says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

MANIFEST_SUFFIX = ".manifest.json"


def manifest_key(archive_key: str) -> str:
    """`…/lifeboat-x.zip` -> `…/lifeboat-x.manifest.json`, the manifest stored beside it."""
    stem = archive_key[:-4] if archive_key.lower().endswith(".zip") else archive_key
    return stem + MANIFEST_SUFFIX


def archive_pattern(prefix: str) -> re.Pattern[str]:
    """Keys Lifeboat itself writes under `prefix`."""
    folder = re.escape(prefix) + "/" if prefix else ""
    return re.compile(folder + r"\d{4}/\d{2}/[^/]+\.zip")


def doomed_archives(listed: Mapping[str, dt.datetime], *, newest_key: str, keep: int, prefix: str) -> list[str]:
    """Archive keys to delete, newest first: all but `newest_key` and the next `keep - 1` newest."""
    pattern = archive_pattern(prefix)
    archives = sorted(
        ((modified, key) for key, modified in listed.items() if pattern.fullmatch(key)),
        reverse=True,
    )
    survivors = {newest_key}
    for _, key in archives:
        if len(survivors) >= max(keep, 1):
            break
        survivors.add(key)
    return [key for _, key in archives if key not in survivors]
