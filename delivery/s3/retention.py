"""Which keys in a bucket are Lifeboat's archives, and where each one's manifest sits.

Why so strict: retention deletes what matches here (`delivery.s3.pruning`), so
only keys in Lifeboat's own layout qualify: `<prefix>/<yyyy>/<mm>/<name>` with
`<name>` = `lifeboat-<who>-<yyyymmddTHHMMSSZ>.zip` (as `jobs.export.archive_filename`
writes it, with `.age` or `.gpg` after it when sealed to the user's key), the
folder matching the stamp. Given the account's own `lifeboat-<who>-`, another
account's archives in a shared bucket do not match either. Anything else a user keeps under the prefix is never touched.
"""

from __future__ import annotations

import datetime as dt
import re

MANIFEST_SUFFIX = ".manifest.json"
# Any account's name part, as archive_filename makes it: ASCII letters and digits in hyphen-joined runs.
ANY_ACCOUNT = "lifeboat-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*-"
_STAMP = "%Y%m%dT%H%M%SZ"


def manifest_key(archive_key: str) -> str:
    """`…/lifeboat-x.zip` -> `…/lifeboat-x.manifest.json`, the manifest stored beside it."""
    stem = archive_key[:-4] if archive_key.lower().endswith(".zip") else archive_key
    return stem + MANIFEST_SUFFIX


def archive_key_pattern(prefix: str, name_prefix: str | None = None) -> re.Pattern[str]:
    """Keys of archives Lifeboat wrote under `prefix`; only `name_prefix`'s (e.g. `lifeboat-alice-`) when given."""
    folder = re.escape(prefix) + "/" if prefix else ""
    name = re.escape(name_prefix) if name_prefix else ANY_ACCOUNT
    # `.zip.age` / `.zip.gpg`: the same archive sealed to the user's key (`delivery.sealing`).
    return re.compile(
        folder + r"(?P<year>\d{4})/(?P<month>\d{2})/" + name + r"(?P<stamp>\d{8}T\d{6}Z)\.zip(?:\.age|\.gpg)?"
    )


def archive_created_at(match: re.Match[str]) -> dt.datetime | None:
    """When the archive was made, from the stamp in its name; None if the stamp or its folder is not real."""
    try:
        when = dt.datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if (match["year"], match["month"]) != (f"{when.year:04d}", f"{when.month:02d}"):
        return None
    return when
