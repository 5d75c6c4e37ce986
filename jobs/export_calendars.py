"""The second process of a big export: `jobs.export_calendars REQUEST`, started by `exporters.archive.helper`.

See `jobs.export_split`; the helper runs it without `jobs/__init__` (the Flask app's wiring).

It reads one user's calendars from the store over a connection of its own,
serialises them (through the user's item cache, like the first process would)
and packs each calendar's compressed member into the file the request names
(`exporters.archive.packed`). It prints one JSON object: the members, the events
it read and the cache's hits and misses for them. Any failure ends it with a
traceback on stderr and a non-zero status, which the first process turns into
one line (`exporters.archive.helper.HelperFailed`).

REQUEST is a JSON file (in the export's private scratch folder, not the
command line: the database URL may hold a password that `ps` would show).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from exporters.archive.layout import Bundle
from exporters.archive.packed import pack_entries
from jobs.export_cache import ItemCacheFile
from store.accounts import AccountReader
from store.db import Database
from store.users import User


def export_calendars(request: dict[str, Any]) -> dict[str, Any]:
    """Pack the calendars `request` asks for; return what the first process needs to copy them."""
    database = Database(request["database"])
    events = {"calendars": 0}
    try:
        with database.session() as session, contextlib.ExitStack() as stack:
            user = session.get(User, int(request["user"]))
            if user is None:
                raise LookupError(f"no user {request['user']}")
            folder = request.get("cache")
            cache = stack.enter_context(ItemCacheFile(Path(folder), user.id, joins=True)) if folder else None
            now = dt.datetime.fromisoformat(request["now"])
            written = _written(cache, now, Path(request["scratch"])) if request.get("drill") and cache else None
            bundle = Bundle(
                AccountReader(session, user),
                now=now,
                timezone=request["timezone"],
                progress=lambda stage, done: events.__setitem__(stage, done),
                scratch=Path(request["scratch"]),
                kinds=("calendars",),
                cache=cache,
                written=written,
            )
            with open(request["out"], "wb") as out:
                members = [member.to_json() for member in pack_entries(bundle.calendar_entries(), out)]
    finally:
        database.dispose()
    return {
        "members": members,
        "events": events["calendars"],
        "hits": bundle.reuse.hits["events"],
        "misses": bundle.reuse.misses["events"],
        "drilled": [] if written is None else [found.to_json() for found in written.calendars.values()],
    }


def _written(cache: ItemCacheFile, now: dt.datetime, scratch: Path) -> Any:
    """The drill done as the calendars are written (`exporters.archive.drill_written`).

    Imported here, not at the top: it brings the readers (vobject, the iCalendar
    reader), which a process that does not drill never uses.
    """
    from exporters.archive.drill_memo import DrillMemo
    from exporters.archive.drill_written import WrittenDrill
    from exporters.ical.writer import stamp_line

    return WrittenDrill(DrillMemo(cache), stamp_line(now), scratch)


def main(argv: list[str]) -> int:
    (request,) = argv
    answer = export_calendars(json.loads(Path(request).read_text(encoding="utf-8")))
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
