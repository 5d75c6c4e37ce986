"""Benchmark: a repeat export with 0 % and 1 % of items changed, against the first export (issue 15).

Why: a periodic export should cost what changed, not what exists. Target: a
repeat export with 1 % of items changed costs at most 0.25x the first export
(CPU time, median of interleaved rounds), and its archive is byte-identical to
an export of the same data without the cache.

Two SQLite databases are imported once (`--workdir` keeps them): `HEAVY x scale`
(seed 2, as bench/export_account.py) and the same account re-imported with 1 %
of its contacts, events and notes edited (every 100th: a contact's note, an
event's summary, a note's body), through `replace_account`, the import path. Each
round then runs, in this one process:

- first: the per-user item cache deleted, then `export_user` of the original
  (it fills the cache: what a user's first scheduled export costs);
- repeat 0 %: `export_user` of the original again, a minute later;
- repeat 1 %: `export_user` of the edited account (its user has the same id, so
  it finds the original's cache), a minute later.

Each export's wall and CPU seconds are taken around `export_user` alone (store
read, serialisation, zip, SHA-256, read-back verification, the cache's own
reads and writes). One `Database` per file serves every export, as in a worker,
and one untimed export of each database warms up imports and compiled statements
first. Ratios are per round, then the median and min-max over rounds.
After the rounds, the last 1 % export is compared byte for byte with an
export of the same data at the same time without the cache.

    .venv/bin/python bench/export_repeat.py [--scale 1] [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL = "bench@example.com"
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


def edit_one_percent(account: Any) -> Any:
    """Every 100th contact, event (per calendar) and note edited; all else the same."""
    from account.records import Calendar

    contacts = list(account.contacts)
    for i in range(0, len(contacts), 100):
        contacts[i] = dataclasses.replace(contacts[i], note=f"edited {i}")
    calendars = []
    for calendar in account.calendars:
        events = list(calendar.events)
        for i in range(0, len(events), 100):
            events[i] = dataclasses.replace(events[i], summary=f"edited {i}")
        calendars.append(Calendar(calendar.info, tuple(events)))
    notes = list(account.notes)
    for i in range(0, len(notes), 100):
        notes[i] = dataclasses.replace(notes[i], body=f"edited {i}\n")
    return dataclasses.replace(account, contacts=tuple(contacts), calendars=tuple(calendars), notes=tuple(notes))


def stamp_events(account: Any) -> Any:
    """Every event saying when it last changed (the sample's do not: their DTSTAMP is then each export's time)."""
    from account.records import Calendar

    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    calendars = [
        Calendar(c.info, tuple(dataclasses.replace(e, created=when, updated=when) for e in c.events))
        for c in account.calendars
    ]
    return dataclasses.replace(account, calendars=tuple(calendars))


def setup(folder: Path, scale: float, *, edited: bool, stamped: bool = False) -> None:
    """HEAVY x `scale` (1 % of it edited with `edited`, its events dated with `stamped`) in `folder`, once."""
    marker = folder / "imported"
    if marker.exists():
        return
    from account.sample import HEAVY, generate_account
    from store import migrate
    from store.accounts import replace_account
    from store.db import Database

    size = HEAVY.scaled(scale)
    account = generate_account(EMAIL, size, seed=2)
    if stamped:
        account = stamp_events(account)
    if edited:
        account = edit_one_percent(account)
    folder.mkdir(parents=True, exist_ok=True)
    database = Database(f"sqlite:///{folder / 'lifeboat.db'}")
    migrate.upgrade(database)
    with database.session(write=True) as session:
        replace_account(session, account)
    database.dispose()
    marker.write_text("ok")


_DATABASES: dict[Path, Any] = {}


def database_of(folder: Path) -> Any:
    """One `Database` per file for the whole run, as a worker process keeps one: its engine's compiled
    statements are reused, so no export pays SQLAlchemy's first-use compile cost but the very first."""
    from store.db import Database

    if folder not in _DATABASES:
        _DATABASES[folder] = Database(f"sqlite:///{folder / 'lifeboat.db'}")
    return _DATABASES[folder]


def export(folder: Path, out: Path, cache: Path | None, now: dt.datetime, name: str) -> tuple[float, float, Any]:
    """One `export_user`; returns (wall s, CPU s, result)."""
    from exporters.ical.timezones import vtimezone
    from jobs.export import export_user
    from store.accounts import find_user

    vtimezone.cache_clear()  # every export builds its VTIMEZONEs
    with database_of(folder).sessionmaker() as session:
        user = find_user(session, EMAIL)
        assert user is not None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = export_user(session, user, out, now=now, archive_id=name, cache_dir=cache)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, result


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of HEAVY")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--workdir", type=Path, help="keep the imported databases here (default: temporary)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lifeboat-repeat-"))
    original, edited = work / f"x{args.scale:g}", work / f"x{args.scale:g}-edited"
    print(f"[{time.strftime('%H:%M:%S')}] importing HEAVY x{args.scale:g} (original and 1 % edited) into {work}")
    setup(original, args.scale, edited=False)
    setup(edited, args.scale, edited=True)
    out, cache = work / "archives", work / "export-cache"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)  # warm-up (not timed): imports, compiled statements, zone data
    export(original, out, cache, NOW - dt.timedelta(days=1), "warm-up")
    export(edited, out, cache, NOW - dt.timedelta(days=1), "warm-up-edited")
    rounds: list[dict[str, tuple[float, float]]] = []
    last: Any = None
    for r in range(args.repeat):
        shutil.rmtree(cache, ignore_errors=True)
        base = NOW + dt.timedelta(hours=r)
        timed = {}
        w, c, _first = export(original, out, cache, base, f"first-{r}")
        timed["first"] = (w, c)
        w, c, same = export(original, out, cache, base + dt.timedelta(minutes=1), f"same-{r}")
        timed["0%"] = (w, c)
        w, c, last = export(edited, out, cache, base + dt.timedelta(minutes=2), f"changed-{r}")
        timed["1%"] = (w, c)
        rounds.append(timed)
        print(
            f"  round {r + 1}: first {timed['first'][0]:.2f} s (CPU {timed['first'][1]:.2f}), "
            f"0 % {timed['0%'][0]:.2f} s (CPU {timed['0%'][1]:.2f}; hits {sum(same.reuse.hits.values())}), "
            f"1 % {timed['1%'][0]:.2f} s (CPU {timed['1%'][1]:.2f}; hits {sum(last.reuse.hits.values())}, "
            f"misses {last.reuse.misses})"
        )
    _, _, plain = export(edited, out, None, NOW + dt.timedelta(hours=args.repeat - 1, minutes=2), "changed-plain")
    same_bytes = _digest(out / last.archive.relpath) == _digest(out / plain.archive.relpath)
    print(f"\nLifeboat repeat-export benchmark: HEAVY x{args.scale:g}, SQLite, {args.repeat} interleaved rounds")
    for label in ("0%", "1%"):
        wall = [t[label][0] / t["first"][0] for t in rounds]
        cpu = [t[label][1] / t["first"][1] for t in rounds]
        print(f"  repeat, {label:>2} changed / first export: wall {spread(wall)}; CPU {spread(cpu)}")
    firsts = [t["first"][1] for t in rounds]
    print(
        f"  first export CPU s: median {statistics.median(firsts):.2f} (rounds {', '.join(f'{v:.2f}' for v in firsts)})"
    )
    print(f"  1 % archive == the same data exported without the cache: {'yes' if same_bytes else 'NO'}")
    print("  target: repeat with 1 % changed <= 0.25x the first export (CPU), byte-identical")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
