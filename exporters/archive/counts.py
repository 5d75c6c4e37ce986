"""What the figures Lifeboat shows count, and the one way they are written.

Why one definition: the same account must read the same everywhere (the
manifest's `counts`, `export`, `verify`, `restore`, a run's history and the
dashboard), or a user comparing them concludes that data went missing. The
figures are what the user entered, the way the store holds them:

- contacts: people in the address book (`contacts/contacts.vcf`, one card
  each; `contacts/cards/` holds the same cards again, one file each);
- calendars: one `.ics` file each;
- events: each event once, a repeating one included, however many times it
  occurs. An occurrence that was moved or changed is part of its event, not
  another one, although iCalendar stores it as an extra VEVENT (with a
  RECURRENCE-ID); `verify` names those separately as changed occurrences;
- notes: one Markdown file each; attachments: the files beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from account.records import KINDS, Account

__all__ = ["KEYS", "KINDS", "KIND_COUNTS", "account_counts", "contents_line", "counts_line"]

KEYS = ("contacts", "calendars", "events", "notes", "attachments")
# Which of `KEYS` the files of each of `account.records.KINDS` bear out (0 when the kind is left out).
KIND_COUNTS = {"contacts": ("contacts",), "calendars": ("calendars", "events"), "notes": ("notes", "attachments")}
EVENTS_MEANING = "a repeating event counts once; its moved or changed occurrences are part of it"
_SINGULAR = {"contacts": "contact", "calendars": "calendar", "events": "event", "notes": "note"}


def _of(n: int, plural: str) -> str:
    return f"{n:,} {_SINGULAR.get(plural, plural[:-1]) if n == 1 else plural}"


def counts_line(counts: Mapping[str, int], kinds: Iterable[str] = KINDS) -> str:
    """`3 contacts, 1,004 events in 2 calendars, 3 notes, 1 attachment`: the figures as every place shows them.

    Thousands separated, as every other figure Lifeboat shows a user ("1,004 events", "Read back 1,234 items").

    `kinds` leaves out the others' figures: a restore of notes alone says what it wrote, not "0 contacts"
    for contacts it kept (user trial).
    """
    get = {key: int(counts.get(key, 0)) for key in KEYS}
    parts = {
        "contacts": _of(get["contacts"], "contacts"),
        "calendars": f"{_of(get['events'], 'events')} in {_of(get['calendars'], 'calendars')}",
        "notes": f"{_of(get['notes'], 'notes')}, {_of(get['attachments'], 'attachments')}",
    }
    wanted = set(kinds)
    return ", ".join(parts[kind] for kind in KINDS if kind in wanted)


def contents_line(counts: Mapping[str, int], kinds: Iterable[str] = KINDS) -> str:
    """`203 contacts; calendars and notes not included`: what an archive of `kinds` holds, and what it left out.

    Why not `counts_line` alone: an archive whose calendars and notes were left
    out read "0 events in 0 calendars, 0 notes" on every page, as if the data
    were gone (user trial 7).
    """
    wanted = set(kinds)
    held = [kind for kind in KINDS if kind in wanted] or list(KINDS)
    left_out = [kind for kind in KINDS if kind not in held]
    line = counts_line(counts, held)
    return f"{line}; {' and '.join(left_out)} not included" if left_out else line


def account_counts(account: Account) -> dict[str, int]:
    """The figures for records in memory (what a restore read), as `store.accounts.Counts` gives them."""
    return {
        "contacts": len(account.contacts),
        "calendars": len(account.calendars),
        "events": sum(len(calendar.events) for calendar in account.calendars),
        "notes": len(account.notes),
        "attachments": sum(len(note.attachments) for note in account.notes),
    }
