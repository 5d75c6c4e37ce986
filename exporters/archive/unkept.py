"""What reading an archive back met but no record can hold: said, never dropped silently.

Why: "nothing is lost silently" holds for exports (the manifest's `changes`), and
a restore of a foreign archive must keep the same promise. A note's front
matter may carry keys Lifeboat's notes have no field for (`aliases`,
`cssclass`), an event or a calendar X- properties another program wrote
(`X-MOZ-SNOOZE`, `X-GOOGLE-CONFERENCE`), a calendar file components other than
events (a VTODO), an event standard properties no `Event` has a place for (GEO,
PRIORITY, CLASS). Contacts keep their other properties (`Contact.extra`), but one
value by name: a repeat, the parameters and the group are not kept. The records
are restored without them, and the restore says how many items lost what, and
which (the first `LISTED`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LISTED = 50  # items named one by one; past that, counted
KINDS = ("contact", "calendar", "event", "note")  # archive order
# One line of the summary per kind: what was not kept, of how many items.
_WHAT = {
    "contact": ("contact's", "contacts'", "property values, parameters or groups"),
    "calendar": ("calendar's", "calendars'", "properties or components"),
    "event": ("event's", "events'", "properties"),
    "note": ("note's", "notes'", "front matter fields"),
}


@dataclass
class Unkept:
    """Per kind, how many items lost something; and the first `LISTED` of them, with what they lost."""

    counts: Counter[str] = field(default_factory=Counter)
    details: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, item, what)
    _last: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    _listed: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)
    _calendars: set[tuple[str, str]] = field(default_factory=set, repr=False, compare=False)

    def add(self, kind: str, item: str, names: Iterable[str]) -> None:
        """Record that `item` (a note's id and file, an event's UID, a calendar's name) lost `names`.

        Told again about an item (a calendar's VTODOs one by one, between its events; an event's
        overrides), it adds the new names to that item rather than counting it twice.
        """
        names = list(dict.fromkeys(names))
        if not names:
            return
        key = (kind, item)
        listed = self._listed.get(key)
        if listed is not None:
            had = self.details[listed][2].split(", ")
            self.details[listed] = (kind, item, ", ".join(dict.fromkeys([*had, *names])))
            return
        # Past the listed ones: an event is told again only right after (its overrides), a calendar anywhere.
        if key == self._last or key in self._calendars:
            return
        self._last = key
        if kind == "calendar":
            self._calendars.add(key)
        self.counts[kind] += 1
        if len(self.details) < LISTED:
            self._listed[key] = len(self.details)
            self.details.append((kind, item, ", ".join(names)))

    def __bool__(self) -> bool:
        return bool(self.counts)

    def merge(self, other: Unkept) -> Unkept:
        """Both, the details in archive order (a two-process restore reads calendars in the other process)."""
        merged = Unkept(self.counts + other.counts)
        ordered = sorted([*self.details, *other.details], key=lambda d: KINDS.index(d[0]))
        merged.details = ordered[:LISTED]
        return merged

    def summary(self) -> list[str]:
        """One line per kind: `Not kept: 2 notes' front matter fields (Lifeboat has no place for them).`"""
        lines = []
        for kind in KINDS:
            n = self.counts[kind]
            if n:
                one, many, what = _WHAT[kind]
                lines.append(f"Not kept: {n:,} {one if n == 1 else many} {what} (Lifeboat has no place for them).")
        return lines

    def lines(self) -> list[str]:
        """Each listed item and what it lost, then how many more there were."""
        lines = [f"{kind} {item}: {what}" for kind, item, what in self.details]
        more = sum(self.counts.values()) - len(self.details)
        if more > 0:
            lines.append(f"... and {more:,} more")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "details": [list(d) for d in self.details]}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Unkept:
        """What `as_json` gave (the restore worker's answer); raises `ValueError` for anything else."""
        counts, details = value.get("counts"), value.get("details")
        if not isinstance(counts, dict) or not isinstance(details, list):
            raise ValueError("not an unkept report")
        if not all(k in KINDS and type(n) is int for k, n in counts.items()):
            raise ValueError("not an unkept report")
        rows = [tuple(d) for d in details]
        if not all(len(d) == 3 and all(isinstance(x, str) for x in d) for d in rows):
            raise ValueError("not an unkept report")
        return cls(Counter(counts), [(d[0], d[1], d[2]) for d in rows])
