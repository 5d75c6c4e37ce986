"""Benchmark: exporting a heavy account, against what the libraries alone cost (issue 2).

Why: an export reads the store, serialises with vobject and icalendar, zips,
hashes, and re-reads the zip to verify it. This shows what all of that costs
next to the bare library serialisation of the same records, and that memory
stays flat as the account grows. Targets: `export_user` (write + verify) at most
1.25x the library-only cost; peak RSS at most 250 MB and growing at most 1.5x
when the data grows 10x.

Sizes are fractions of `account.sample.HEAVY` (10,000 contacts, 10% with 20 KiB
photos; 50,000 events, ~10% recurring with an override and an EXDATE; 5,000
notes, 1% with attachments). By default the timing rounds run at 0.1x and 1x
HEAVY, and peak RSS is compared between 1x and 10x HEAVY (100,000 contacts, 500,000
events, 50,000 notes; its import alone takes several minutes, so that scale gets
one export and no timing rounds).

Every measurement runs in a child process of its own, so each peak RSS
(`resource.getrusage`) belongs to that measurement alone:

- setup: generate the account and import it into SQLite (not measured);
- rss: one `export_user`, nothing else, in a fresh process (peak RSS);
- check: `exporters.archive.check.check_archive` on that archive (independent parsers;
  reported separately, it is not part of an export);
- timing: `--repeat` rounds of `export_user` and, on the same records in the same
  process, the library-only baseline (vobject `.serialize()`, icalendar
  `.to_ical()`, a string join for Markdown; no database, zip, hashing or
  verification). Medians are reported, and per-format app time comes from when
  the export pulls each kind of record from the store. Each round also times the
  plain-writer floor, the store read alone and a plain scan (bench/export_floor.py),
  printed as "first export vs plain-writer floor" and "store read alone vs plain
  scan": median ratio of the rounds with min-max, wall and CPU.

    .venv/bin/python bench/export_account.py [--scales 0.1,1] [--memory-scales 1,10] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL = "bench@example.com"
FORMATS = ("contacts", "calendars", "notes")
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
MB = 1_000_000

if TYPE_CHECKING:  # imported lazily below, once sys.path holds the checkout
    from store.accounts import AccountReader


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux


def db_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'lifeboat.db'}"


# --- children ---------------------------------------------------------------------------


def setup(folder: Path, scale: float) -> dict[str, Any]:
    """Generate HEAVY x `scale` and import it (skipped when `folder` already holds it)."""
    marker = folder / "account.json"
    if marker.exists():
        return json.loads(marker.read_text())
    from account.sample import HEAVY, generate_account
    from store import migrate
    from store.accounts import replace_account
    from store.db import Database

    size = HEAVY.scaled(scale)
    account = generate_account(EMAIL, size, seed=2)
    events = [e for c in account.calendars for e in c.events]
    stats: dict[str, float] = {
        "contacts": len(account.contacts),
        "photos": sum(c.photo is not None for c in account.contacts),
        "events": len(events),
        "recurring": sum(e.rrule is not None for e in events),
        "overrides": sum(len(e.overrides) for e in events),
        "notes": len(account.notes),
        "attachments": sum(len(n.attachments) for n in account.notes),
    }
    folder.mkdir(parents=True, exist_ok=True)
    database = Database(db_url(folder))
    migrate.upgrade(database)
    start = time.perf_counter()
    with database.session(write=True) as session:
        replace_account(session, account)
    stats["import_s"] = time.perf_counter() - start
    database.dispose()
    marker.write_text(json.dumps(stats))
    return stats


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds; this process's CPU time is what other load disturbs least."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def _export(folder: Path, run: int) -> tuple[tuple[float, float], Any]:
    """One `export_user` into `folder/archives`; returns ((wall, CPU) seconds, result)."""
    from exporters.ical.timezones import vtimezone
    from jobs.export import export_user
    from store.accounts import find_user
    from store.db import Database

    vtimezone.cache_clear()  # every run builds its VTIMEZONEs, as the baseline does
    database = Database(db_url(folder))
    with database.sessionmaker() as session:  # rolled back: the `Archive` row is not kept
        user = find_user(session, EMAIL)
        assert user is not None
        gc.collect()
        start = clock()
        result = export_user(
            session,
            user,
            folder / "archives",
            now=NOW + dt.timedelta(minutes=run),
            archive_id=f"bench-{run}",
        )
        seconds = since(start)
    database.dispose()
    return seconds, result


def rss(folder: Path) -> dict[str, Any]:
    """Peak RSS of a process that does one export and nothing else."""
    import jobs.export  # noqa: F401  (imports count in the "after imports" figure)
    import store.accounts  # noqa: F401

    after_imports = rss_mb()
    seconds, result = _export(folder, 0)
    return {
        "after_imports_mb": after_imports,
        "peak_mb": rss_mb(),
        "export_s": seconds[0],
        "archive": str(result.info.path),
        "archive_bytes": result.info.size,
    }


def check(archive: Path) -> dict[str, Any]:
    from exporters.archive.check import check_archive

    start = time.perf_counter()
    report = check_archive(archive)
    return {
        "check_s": time.perf_counter() - start,
        "peak_mb": rss_mb(),
        "items": dict(report.items),
    }


class _Clock:
    """Stage boundaries of one export, taken where it pulls each kind of record from the store."""

    marks: dict[str, tuple[float, float]] = {}

    @classmethod
    def reader(cls) -> type[AccountReader]:
        from store.accounts import AccountReader

        marks = cls.marks

        class TimedReader(AccountReader):
            def contacts(self) -> Iterator[Any]:
                marks["contacts"] = clock()
                yield from super().contacts()

            def calendars(self) -> list[Any]:
                marks["calendars"] = clock()  # contacts and address book are written
                return super().calendars()

            def notes(self) -> Iterator[Any]:
                marks["notes"] = clock()  # every calendar is written
                yield from super().notes()
                marks["finish"] = clock()  # every note is written; README, sums, verify next

        return TimedReader


def timing(folder: Path, repeat: int) -> dict[str, Any]:
    """`repeat` interleaved rounds of the app's export and the library-only baseline."""
    from export_floor import records, timed_floor, timed_reads

    import jobs.export

    contacts, calendars, notes = records(db_url(folder), EMAIL)  # the very records the export serialises
    jobs.export.AccountReader = _Clock.reader()  # type: ignore[misc]  # this process only

    floor: list[list[float]] = []  # issue 15: the plain-writer pipeline, and the store read vs a plain scan
    reads: list[list[float]] = []
    scans: list[list[float]] = []
    # Each list holds one [wall, CPU] pair per round.
    app: dict[str, list[list[float]]] = {k: [] for k in (*FORMATS, "finish", "total")}
    lib: dict[str, list[list[float]]] = {k: [] for k in (*FORMATS, "total")}
    for run in range(repeat):
        _Clock.marks.clear()
        seconds, result = _export(folder, run + 1)
        m = _Clock.marks
        result.info.path.unlink()
        for key, first, last in (
            ("contacts", "contacts", "calendars"),
            ("calendars", "calendars", "notes"),
            ("notes", "notes", "finish"),
        ):
            app[key].append([m[last][i] - m[first][i] for i in (0, 1)])
        app["total"].append(list(seconds))
        # counts before the contacts; README, SHA256SUMS, manifest, fsync and verify after the notes
        app["finish"].append([seconds[i] - (m["finish"][i] - m["contacts"][i]) for i in (0, 1)])
        gc.collect()
        times = library_only(contacts, calendars, notes)
        for key, value in times.items():
            lib[key].append(list(value))
        lib["total"].append([sum(v[i] for v in times.values()) for i in (0, 1)])
        floor.append(timed_floor(contacts, calendars, notes, folder))
        read, scan = timed_reads(db_url(folder), EMAIL)
        reads.append(read)
        scans.append(scan)
        print(
            f"  round {run + 1}: export_user {seconds[0]:.2f} s (CPU {seconds[1]:.2f} s), "
            f"library {lib['total'][-1][0]:.2f} s (CPU {lib['total'][-1][1]:.2f} s), "
            f"floor {floor[-1][0]:.2f} s (CPU {floor[-1][1]:.2f} s), "
            f"store read {read[0]:.2f} s (CPU {read[1]:.2f} s), plain scan {scan[0]:.2f} s (CPU {scan[1]:.2f} s)",
            file=sys.stderr,
        )
    return {"app": app, "lib": lib, "floor": floor, "read": reads, "scan": scans}


# --- the library-only baseline ------------------------------------------------------------


def library_only(contacts: list[Any], calendars: list[Any], notes: list[Any]) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per format to serialise the records with the libraries alone."""
    out: dict[str, tuple[float, float]] = {}
    start = clock()
    cards = [_vcard(c) for c in contacts]
    out["contacts"] = since(start)
    start = clock()
    files = [_ics(info, events) for info, events in calendars]
    out["calendars"] = since(start)
    start = clock()
    texts = [_markdown(n) for n in notes]
    out["notes"] = since(start)
    assert cards and files and texts
    return out


def _vcard(c: Any) -> bytes:
    import vobject

    card = vobject.vCard()
    card.add("uid").value = c.uid
    card.add("fn").value = c.formatted_name or ""
    n = c.name
    card.add("n").value = vobject.vcard.Name(
        family=n.family or "",
        given=n.given or "",
        additional=n.additional or "",
        prefix=n.prefix or "",
        suffix=n.suffix or "",
    )
    for prop, value in (
        ("nickname", c.nickname),
        ("title", c.title),
        ("role", c.role),
        ("note", c.note),
    ):
        if value:
            card.add(prop).value = value
    if c.organization or c.department:
        card.add("org").value = [c.organization or "", *([c.department] if c.department else [])]
    for prop, items in (("email", c.emails), ("tel", c.phones), ("url", c.urls)):
        for item in items:
            line = card.add(prop)
            line.value = item.value
            line.params["TYPE"] = [*item.types, *(["pref"] if item.preferred else [])]
    for a in c.addresses:
        line = card.add("adr")
        line.value = vobject.vcard.Address(
            box=a.po_box or "",
            extended=a.extended or "",
            street=a.street or "",
            city=a.locality or "",
            region=a.region or "",
            code=a.postal_code or "",
            country=a.country or "",
        )
        line.params["TYPE"] = list(a.types)
    if c.birthday:
        card.add("bday").value = c.birthday
    if c.categories:
        card.add("categories").value = list(c.categories)
    if c.photo:
        line = card.add("photo")
        line.encoding_param = "b"
        line.type_param = c.photo.media_type.split("/")[-1].upper()
        line.value = c.photo.data
    for key, value in c.extra.items():
        card.add(key).value = value
    if c.updated:
        card.add("rev").value = c.updated.strftime("%Y%m%dT%H%M%SZ")
    return card.serialize().encode("utf-8")


def _ics(info: Any, events: list[Any]) -> bytes:
    import zoneinfo

    from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress, vDuration, vRecur

    def value(when: Any) -> Any:
        if when.date is not None:
            return when.date
        return when.datetime.replace(tzinfo=zoneinfo.ZoneInfo(when.tz)) if when.tz else when.datetime

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    cal = Calendar()
    for key, text in (("PRODID", "-//bench//EN"), ("VERSION", "2.0"), ("X-WR-CALNAME", info.name)):
        cal.add(key, text)
    zones = {w.tz for e in events for w in (e.start, e.end, *e.exdates) if w and w.tz}
    for tzid in sorted(zones):
        cal.add_component(Timezone.from_tzid(tzid, first_date=dt.date(1970, 1, 1), last_date=dt.date(2100, 1, 1)))
    for e in events:
        comp = Event()
        comp.add("UID", e.uid)
        comp.add("DTSTAMP", e.updated or e.created or epoch)
        comp.add("DTSTART", value(e.start))
        if e.end:
            comp.add("DTEND", value(e.end))
        for key, text in (
            ("SUMMARY", e.summary),
            ("DESCRIPTION", e.description),
            ("LOCATION", e.location),
            ("STATUS", e.status),
        ):
            if text:
                comp.add(key, text)
        if e.rrule:
            comp.add("RRULE", vRecur.from_ical(e.rrule))
        if e.exdates:
            comp.add("EXDATE", [value(w) for w in e.exdates])
        people: list[tuple[str, Any, dict[str, str]]] = [("ORGANIZER", e.organizer, {})] if e.organizer else []
        people += [("ATTENDEE", a, {"ROLE": a.role, "PARTSTAT": a.partstat}) for a in e.attendees]
        for key, person, params in people:
            address = vCalAddress(f"mailto:{person.email}")
            for name, text in {"CN": person.name, **params}.items():
                if text:
                    address.params[name] = text
            comp.add(key, address)
        if e.categories:
            comp.add("CATEGORIES", list(e.categories))
        for a in e.alarms:
            alarm = Alarm()
            alarm.add("ACTION", a.action or "DISPLAY")
            alarm.add("TRIGGER", vDuration.from_ical(a.trigger))
            alarm.add("DESCRIPTION", a.description or e.summary or "Reminder")
            comp.add_component(alarm)
        cal.add_component(comp)
        for o in e.overrides:
            moved = Event()
            moved.add("UID", e.uid)
            moved.add("DTSTAMP", e.updated or e.created or epoch)
            moved.add("RECURRENCE-ID", value(o.recurrence_id))
            moved.add("DTSTART", value(o.start or o.recurrence_id))
            if o.end:
                moved.add("DTEND", value(o.end))
            if o.summary:
                moved.add("SUMMARY", o.summary)
            cal.add_component(moved)
    return cal.to_ical()


def _markdown(note: Any) -> list[bytes]:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [
        "---",
        f"title: {q(note.title)}",
        f"id: {q(note.id)}",
        f"notebook: {q(note.notebook or '')}",
        "tags: [" + ", ".join(q(t) for t in note.tags) + "]",
        f"pinned: {str(note.pinned).lower()}",
        f"archived: {str(note.archived).lower()}",
        f"created: {q(note.created.isoformat())}",
        f"updated: {q(note.updated.isoformat())}",
    ]
    if note.attachments:
        lines.append("attachments:")
        lines += [f"  - {{file: {q(a.filename)}, media_type: {q(a.media_type)}}}" for a in note.attachments]
    return [
        ("\n".join(lines) + "\n---\n" + note.body).encode("utf-8"),
        *(a.data for a in note.attachments),
    ]


# --- the parent -------------------------------------------------------------------------


def child(*args: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(workdir: Path, scale: float, repeat: int, *, timed: bool) -> dict[str, Any]:
    """Setup and peak RSS at `scale`; with `timed`, also the independent check and the timing rounds."""
    folder = workdir / f"x{scale:g}"

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] x{scale:g}: {text}", file=sys.stderr, flush=True)

    say("setup (generate + import)")
    stats = child("setup", str(folder), str(scale))
    say(f"rss (one export); import took {stats['import_s']:.1f} s")
    memory = child("rss", str(folder))
    result = {"scale": scale, "stats": stats, "rss": memory, "timed": timed}
    if timed:
        say("check_archive")
        result["check"] = child("check", memory["archive"])
        say(f"timing ({repeat} rounds)")
        result.update(child("timing", str(folder), str(repeat)))
    shutil.rmtree(folder / "archives", ignore_errors=True)
    return result


def median(rounds: list[list[float]], i: int) -> float:
    """The median over rounds of the wall (`i` = 0) or CPU (`i` = 1) seconds."""
    return statistics.median(r[i] for r in rounds)


def report(everything: list[dict[str, Any]], repeat: int, memory_scales: list[float]) -> None:
    results = [r for r in everything if r["timed"]]
    print(
        f"Lifeboat export benchmark: HEAVY x scale, SQLite, {repeat} rounds per scale, medians; "
        f"Python {sys.version.split()[0]}"
    )
    for r in everything:
        s = r["stats"]
        print(
            f"  x{r['scale']:g}: {s['contacts']} contacts ({s['photos']} with photos), "
            f"{s['events']} events "
            f"({s['recurring']} recurring, {s['overrides']} overrides), {s['notes']} notes "
            f"({s['attachments']} attachments); import {s['import_s']:.1f} s (setup, not measured)"
        )
    print(
        "  app = export_user: store read, serialise, zip, hash, verify (finish+verify = counts,\n"
        "  README, SHA256SUMS, manifest, fsync, read-back check, file hash); lib = vobject,\n"
        "  icalendar and str.join alone on the same records; CPU = this process's CPU time"
    )
    print()
    head = (
        f"{'scale':>6} {'format':<10} {'items':>6} | {'app s':>6} {'CPU s':>6} {'items/s':>7} | "
        f"{'lib s':>6} {'CPU s':>6} {'items/s':>7} | {'app/lib':>7} {'CPU':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        s, app, lib, x = r["stats"], r["app"], r["lib"], f"{r['scale']:g}x"
        counts = {"contacts": s["contacts"], "calendars": s["events"], "notes": s["notes"]}
        counts["total"] = sum(counts.values())
        for key in (*FORMATS, "finish", "total"):
            a, ac = median(app[key], 0), median(app[key], 1)
            if key == "finish":
                print(f"{x:>6} {'finish+verify':<17} | {a:>6.2f} {ac:>6.2f}")
                continue
            b, bc, n = median(lib[key], 0), median(lib[key], 1), counts[key]
            name = "ALL" if key == "total" else key
            print(
                f"{x:>6} {name:<10} {n:>6} | {a:>6.2f} {ac:>6.2f} {n / a:>7.0f} | "
                f"{b:>6.2f} {bc:>6.2f} {n / b:>7.0f} | {a / b:>6.2f}x {ac / bc:>5.2f}x"
            )
        pairs = list(zip(app["total"], lib["total"], strict=True))
        rounds = ", ".join(f"{t[0]:.2f}/{u[0]:.2f}" for t, u in pairs)
        wall = [t[0] / u[0] for t, u in pairs]
        cpu = [t[1] / u[1] for t, u in pairs]
        print(
            f"{'':>6} per round, export_user/library s: {rounds}; ratios "
            f"{', '.join(f'{x:.2f}' for x in wall)} (CPU {', '.join(f'{x:.2f}' for x in cpu)}); "
            f"median {statistics.median(wall):.2f}x (CPU {statistics.median(cpu):.2f}x)"
        )
        from export_floor import ratio_line

        print(f"{'':>6} " + ratio_line("first export vs plain-writer floor", app["total"], r["floor"]))
        print(f"{'':>6} " + ratio_line("store read alone vs plain scan", r["read"], r["scan"]))
        c = r["check"]
        print(
            f"{'':>6} check_archive (independent parsers, not part of the export): "
            f"{c['check_s']:.2f} s "
            f"for a {r['rss']['archive_bytes'] / MB:.1f} MB archive"
        )
        print()
    print("target: export_user <= 1.25x library-only (ALL row); first export <= 2x the plain-writer floor (issue 15)")
    print()
    head = (
        f"{'scale':>6} | {'export peak RSS MB':>18} {'after imports MB':>16} {'export s':>8} | "
        f"{'check_archive peak RSS MB':>25}"
    )
    print(head)
    print("-" * len(head))
    for r in everything:
        m = r["rss"]
        checked = f"{r['check']['peak_mb']:>25.0f}" if "check" in r else f"{'(not run)':>25}"
        print(
            f"{r['scale']:>5g}x | {m['peak_mb']:>18.0f} {m['after_imports_mb']:>16.0f} "
            f"{m['export_s']:>8.2f} | {checked}"
        )
    sized = [r for r in everything if r["scale"] in memory_scales]
    if len(sized) >= 2:
        small, big = sized[0], sized[-1]
        growth = big["rss"]["peak_mb"] / small["rss"]["peak_mb"]
        data = big["scale"] / small["scale"]
        print(
            f"export peak RSS {big['rss']['peak_mb']:.0f} MB at x{big['scale']:g} "
            "(target <= 250 MB); "
            f"x{small['scale']:g} -> x{big['scale']:g} ({data:g}x the data): {growth:.2f}x "
            "(target <= 1.5x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.1,1", help="fractions of HEAVY to time, comma-separated")
    parser.add_argument(
        "--memory-scales", default="1,10", help="fractions of HEAVY whose peak RSS is compared (one export each)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.005x and 0.05x, 2 rounds")
    parser.add_argument("--workdir", type=Path, help="keep databases here and reuse them (default: temp)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "setup":
            out = setup(Path(rest[0]), float(rest[1]))
        elif kind == "rss":
            out = rss(Path(rest[0]))
        elif kind == "check":
            out = check(Path(rest[0]))
        else:
            out = timing(Path(rest[0]), int(rest[1]))
        print(json.dumps(out))
        return
    scales = [0.005, 0.05] if args.quick else [float(x) for x in args.scales.split(",")]
    memory_scales = [0.005, 0.05] if args.quick else sorted(float(x) for x in args.memory_scales.split(","))
    repeat = 2 if args.quick and args.repeat == 3 else args.repeat
    temp = None if args.workdir else tempfile.mkdtemp(prefix="lifeboat-bench-")
    workdir = args.workdir or Path(temp or ".")
    try:
        results = [
            measure(workdir, scale, repeat, timed=scale in scales) for scale in sorted({*scales, *memory_scales})
        ]
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    report(results, repeat, memory_scales)


if __name__ == "__main__":
    main()
