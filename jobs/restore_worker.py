"""The second process of a two-process restore: `jobs.restore_worker ARCHIVE SCRATCH SPOOL EMAIL SHA256 PARENT_PID`.

Started by `exporters.archive.helper`, not `python -m`, so that `jobs/__init__`
(the Flask app's wiring) is not imported. The first process verifies the archive
in full while this one runs, and uses its answer only if that verification
passed; so this one checks that the file is the one the first process hashed
(SHA256, the whole file's SHA-256: 0.04 s CPU at 1x HEAVY, where verifying
again took ~0.9 s) and each member it reads against its listed SHA-256, reads,
checks and maps its calendars into the spool file SPOOL, and
prints one JSON object: `{"staged": {"calendars": n, "events": n, "replaced":
[...], "unkept": {...}}}` (`exporters.archive.unkept.Unkept.as_json`), or
`{"invalid": message}` if anything is wrong with the archive
(`jobs.restore` then redoes the restore in one process, which reports it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from errors import InvalidInput
from exporters.archive.reader import open_records
from store.replace import Owner, stage


def main(argv: list[str]) -> int:
    archive, scratch, spool, email, sha256, parent_pid = argv
    parent = int(parent_pid)  # passed, not read at start: the first process may be gone before this one starts
    answer: dict[str, object]
    try:
        with open_records(Path(archive), email=email, scratch=Path(scratch), verified_sha256=sha256) as records:
            owner = Owner(records.email, records.display_name, records.timezone)
            with Path(spool).open("w+b") as out:
                kinds = ("calendars",) if "calendars" in records.kinds else ()
                staged = stage(owner, records, kinds, spool=out)
            unkept = records.unkept.as_json()
    except (InvalidInput, ValueError, KeyError) as exc:  # ArchiveError is a ValueError
        answer = {"invalid": str(exc)}
    else:
        counts = staged.counts
        found = {"calendars": counts.calendars, "events": counts.events, "replaced": staged.replaced, "unkept": unkept}
        answer = {"staged": found}
    if os.getppid() != parent:
        # The first process was killed (it removes the spool on every exit it lives through): nobody will
        # read this spool, and in the system's temporary folder no housekeeping would ever remove it.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spool)
        return 1
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
