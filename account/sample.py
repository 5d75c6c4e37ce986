"""Generate realistic accounts of any size, deterministically (demo data, tests, benchmarks).

Why generated rather than stored: the benchmark needs 10,000 contacts and
50,000 events, the demo needs something rich to look at, and tests need
sizes in between; one seeded generator serves all three and costs nothing in
the repository.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace

from account.records import (
    Account,
    Address,
    Alarm,
    Attachment,
    Attendee,
    Blob,
    Calendar,
    CalendarInfo,
    Contact,
    Event,
    Name,
    Note,
    Override,
    Person,
    Typed,
    When,
)

GIVEN = [
    "Alice",
    "Bob",
    "Chloé",
    "Dmitri",
    "Eun-ji",
    "Fatima",
    "Günther",
    "Hiroshi",
    "Ines",
    "José",
    "Kwame",
    "Léa",
    "Mateo",
    "Nadia",
    "Øyvind",
    "Priya",
    "Quentin",
    "Rūta",
    "Siobhán",
    "Thanh",
]
FAMILY = [
    "Müller",
    "Smith",
    "García",
    "Nakamura",
    "O'Brien",
    "Kowalski",
    "Nguyen",
    "Rossi",
    "Dubois",
    "Andersson",
    "Yılmaz",
    "Kim",
    "Novak",
    "Silva",
    "Jensen",
    "Popescu",
    "Cohen",
    "Singh",
]
ORGS = ["Danger, Inc.", "Hiptop Labs", "Acme; Widgets", "Café Zoë", "Example GmbH", "北京科技"]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo"]
WORDS = ["backup", "sync", "review", "lunch", "call", "plan", "dentist", "flight", "yoga", "retro"]
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cff0c01f0005000201a1e5b1f70000000049454e44ae426082"
)


@dataclass(frozen=True)
class SampleSize:
    contacts: int = 200
    events: int = 1000
    notes: int = 100
    photo_ratio: float = 0.1
    photo_bytes: int = 2048
    recurring_ratio: float = 0.1
    attachment_ratio: float = 0.05
    attachment_bytes: int = 4096
    calendars: int = 2

    def scaled(self, scale: float) -> SampleSize:
        """This size with `scale` times the contacts, events and notes ("HEAVY x 0.1" in the benchmarks)."""
        return replace(
            self,
            contacts=round(self.contacts * scale),
            events=round(self.events * scale),
            notes=round(self.notes * scale),
        )


TYPICAL = SampleSize()
HEAVY = SampleSize(contacts=10_000, events=50_000, notes=5_000, photo_bytes=20 * 1024, attachment_ratio=0.01)


def generate_account(email: str, size: SampleSize = TYPICAL, *, seed: int = 1) -> Account:
    rng = random.Random(seed)
    base = dt.datetime(2009, 1, 1, tzinfo=dt.UTC)
    contacts = tuple(_contact(rng, i, size, base) for i in range(size.contacts))
    per_calendar = [size.events // size.calendars] * size.calendars
    per_calendar[0] += size.events - sum(per_calendar)
    calendars = []
    counter = 0
    for c, count in enumerate(per_calendar):
        events = []
        for _ in range(count):
            events.append(_event(rng, counter, size))
            counter += 1
        calendars.append(
            Calendar(
                CalendarInfo(
                    name=["Personal", "Work", "Family", "Travel"][c % 4] + (f" {c}" if c >= 4 else ""),
                    color=f"#{rng.randrange(0xFFFFFF):06x}",
                    description="Generated sample calendar",
                ),
                tuple(events),
            )
        )
    notes = tuple(_note(rng, i, size, base) for i in range(size.notes))
    return Account(
        email=email,
        display_name="Demo User",
        timezone="Europe/Berlin",
        contacts=contacts,
        calendars=tuple(calendars),
        notes=notes,
    )


def _blob(rng: random.Random, size: int) -> bytes:
    # A real PNG header so viewers recognise it, padded with incompressible bytes.
    return PNG_1PX + rng.randbytes(max(0, size - len(PNG_1PX)))


def _contact(rng: random.Random, i: int, size: SampleSize, base: dt.datetime) -> Contact:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    local = f"{given}.{family}".lower().replace("'", "").replace(" ", "")
    stamp = base + dt.timedelta(minutes=i * 17)
    return Contact(
        uid=f"contact-{i:06d}@lifeboat.example",
        formatted_name=f"{given} {family}",
        name=Name(family=family, given=given),
        nickname=given[:3] if i % 5 == 0 else None,
        organization=rng.choice(ORGS) if i % 3 == 0 else None,
        department="Engineering" if i % 6 == 0 else None,
        title="Engineer" if i % 4 == 0 else None,
        emails=(Typed(f"{local}{i}@example.com", ("work",), True), Typed(f"{local}{i}@example.org", ("home",))),
        phones=(Typed(f"+49 30 {rng.randrange(10**6, 10**7)}", ("cell",)),),
        addresses=(
            Address(
                types=("home",),
                street=f"Hauptstraße {i % 200 + 1}",
                locality="Berlin",
                postal_code=f"{10115 + i % 100}",
                country="Germany",
            ),
        )
        if i % 2 == 0
        else (),
        urls=(Typed(f"https://{local}.example.com", ("home",)),) if i % 7 == 0 else (),
        birthday=f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}"
        if i % 3
        else f"--{1 + i % 12:02d}-{1 + i % 28:02d}",
        categories=("Friends",) if i % 2 else ("Work", "Friends"),
        note=f"Met at event {i}.\nSecond line; with, separators." if i % 4 == 0 else None,
        photo=Blob("image/png", _blob(rng, size.photo_bytes)) if rng.random() < size.photo_ratio else None,
        extra={"X-SPOUSE": rng.choice(GIVEN)} if i % 10 == 0 else {},
        created=stamp,
        updated=stamp + dt.timedelta(days=30),
    )


def _event(rng: random.Random, i: int, size: SampleSize) -> Event:
    zone = rng.choice(ZONES)
    day = dt.datetime(2009, 1, 1) + dt.timedelta(days=i % 3650, hours=8 + i % 10)
    start = When(datetime=day, tz=zone)
    end = When(datetime=day + dt.timedelta(minutes=30 + 15 * (i % 4)), tz=zone)
    kind = i % 10
    if kind == 0:  # all-day
        start, end = When(date=day.date()), When(date=day.date() + dt.timedelta(days=1))
    elif kind == 1:  # absolute (UTC)
        start = When(datetime=day.replace(tzinfo=dt.UTC))
        end = When(datetime=(day + dt.timedelta(hours=2)).replace(tzinfo=dt.UTC))
    recurring = rng.random() < size.recurring_ratio and kind != 1
    overrides: tuple[Override, ...] = ()
    exdates: tuple[When, ...] = ()
    rrule = None
    if recurring:
        rrule = "FREQ=WEEKLY;COUNT=10" if kind else "FREQ=YEARLY"
        second = _shift(start, 7 if kind else 365)
        third = _shift(start, 14 if kind else 730)
        overrides = (
            Override(
                recurrence_id=second,
                summary="Moved instance",
                start=_shift(second, 0, hours=1),
                end=_shift(second, 0, hours=2) if kind else None,
            ),
        )
        exdates = (third,)
    return Event(
        uid=f"event-{i:07d}@lifeboat.example",
        start=start,
        end=end,
        summary=f"{rng.choice(WORDS).title()} #{i}",
        description="Agenda:\n1. Backups\n2. Upgrades" if i % 5 == 0 else None,
        location="Room 4, Building B" if i % 3 == 0 else None,
        rrule=rrule,
        exdates=exdates,
        overrides=overrides,
        status="CONFIRMED" if i % 2 else None,
        organizer=Person("demo@example.com", "Demo User") if i % 8 == 0 else None,
        attendees=(Attendee("bob@example.com", "Bob Müller", "REQ-PARTICIPANT", "ACCEPTED"),) if i % 8 == 0 else (),
        alarms=(Alarm("-PT15M", "DISPLAY", "Reminder"),) if i % 6 == 0 else (),
        categories=("Work",) if i % 2 else (),
    )


def _shift(when: When, days: int, hours: int = 0) -> When:
    if when.date is not None:
        return When(date=when.date + dt.timedelta(days=days))
    assert when.datetime is not None
    return When(datetime=when.datetime + dt.timedelta(days=days, hours=hours), tz=when.tz)


def _note(rng: random.Random, i: int, size: SampleSize, base: dt.datetime) -> Note:
    stamp = base + dt.timedelta(hours=i * 5)
    title = rng.choice(["Shopping list", "Ideas", "Meeting notes", "Recipe: Käsespätzle", "Travel plans"])
    attachments: tuple[Attachment, ...] = ()
    if rng.random() < size.attachment_ratio:
        attachments = (Attachment("scan.png", "image/png", _blob(rng, size.attachment_bytes)),)
    return Note(
        id=f"note-{i:06d}",
        title=title,
        body=f"# {title}\n\n- item {i}\n- [ ] something else\n\n```\ncode {i}\n```\n",
        notebook=rng.choice(["Home", "Work/Projects", "Travel"]),
        tags=("generated", WORDS[i % len(WORDS)]),
        pinned=i % 20 == 0,
        archived=i % 15 == 0,
        attachments=attachments,
        created=stamp,
        updated=stamp + dt.timedelta(days=1),
    )


def demo_account(email: str) -> Account:
    """A generated account of typical size plus every hard case of the shipped sample."""
    import json
    from dataclasses import replace
    from importlib import resources

    from account.jsonio import account_from_dict

    sample = account_from_dict(json.loads(resources.files("account").joinpath("samples/alice.json").read_text("utf-8")))
    generated = generate_account(email)
    by_name = {c.info.name: c for c in generated.calendars}
    for calendar in sample.calendars:  # sample events first, in calendars of the same name
        known = by_name.get(calendar.info.name)
        by_name[calendar.info.name] = (
            calendar if known is None else Calendar(known.info, calendar.events + known.events)
        )
    return replace(
        generated,
        display_name="Demo User",
        contacts=sample.contacts + generated.contacts,
        calendars=tuple(by_name.values()),
        notes=sample.notes + generated.notes,
    )
