"""What the fidelity drill found, in words: each difference names the item, the field, expected and found.

Why apart from the drill: both ways of reading an archive back
(`exporters.archive.drill` in full, `exporters.archive.drill_memo` with what
earlier drills proved) describe differences the same way. Values are cut short
and binary values shown by size and hash: the lines go to the user's own run
page, never to logs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from itertools import zip_longest
from typing import Any

from account.records import Contact, Event, Note

DESCRIBED = 10  # differences kept in words; the rest are counted
_SHOWN = 60  # characters of a value shown in a difference
ABSENT = "absent"


@dataclass(frozen=True)
class Difference:
    """One field of one item that did not come back as it went in."""

    kind: str  # contact, calendar, event, note, archive
    item: str  # the item's id: contact or event UID, calendar name, note id
    field: str  # e.g. "emails[1].value"; "(whole item)" for an item missing or added
    expected: str
    found: str

    def line(self) -> str:
        return f"{self.kind} {self.item}: {self.field}: expected {self.expected}, found {self.found}"

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "item": self.item,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
        }

    def where(self) -> str:
        """The kind and field only (`contact emails[1].value`): what differs, without the item or any value.

        Why: staff may learn that a run's archive lost a contact's second email, never
        whose or which. A mapping key (a vCard property's name under `extra`) is kept
        only when it is a standard property's name: a custom one is the user's words.
        """
        return f"{self.kind} {_MAP_KEY.sub(_property_or_not, self.field)}"


@dataclass
class DrillResult:
    """What the drill found: items compared, items that differ, and the first differences in words."""

    items: int = 0
    differences: int = 0  # items with at least one difference
    described: list[Difference] = field(default_factory=list)
    method: str = "full"  # every item parsed and compared; "memo": items proven before were not parsed again
    skipped: int = 0  # items not parsed again (counted in `items`): their bytes were proven before

    def summary(self) -> str:
        """What the user reads first: `Read back 1,234 items: 0 differences`."""
        return readback_summary(self.items, self.differences)

    def lines(self) -> list[str]:
        return [d.line() for d in self.described]

    def merge(self, other: DrillResult) -> None:
        self.items += other.items
        self.differences += other.differences
        self.described.extend(other.described[: max(0, DESCRIBED - len(self.described))])

    def differ(self, found: list[Difference]) -> None:
        self.differences += 1
        self.described.extend(found[: max(0, DESCRIBED - len(self.described))])


def unreadable(kind: str, item: str, cause: str) -> Difference:
    """An item (or a whole member, `kind` "archive") our own readers refused, and the reader's words why.

    The cause is the reader's message about our own output (a line number, a
    property, at most the 60 characters it quotes), so more of it is kept than of a value.
    """
    said = cause if len(cause) <= _CAUSE_SHOWN else cause[: _CAUSE_SHOWN - 1] + "…"
    return Difference(kind, item, "(read back)", "readable", f"unreadable: {said}")


_CAUSE_SHOWN = 240


_MAP_KEY = re.compile(r"\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]")
# The vCard properties of RFC 6350 (and 2426) a record keeps under `extra`: a name anyone could look up. Any
# other name, an X- one above all, is the user's own words ("X-HIV-STATUS-OF-ANNA") and never shown to staff.
_STANDARD_PROPERTIES = frozenset(
    "SOURCE KIND XML GENDER LANG IMPP GEO ROLE LOGO MEMBER RELATED CATEGORIES PRODID SOUND CLIENTPIDMAP "  # noqa: SIM905
    "KEY FBURL CALADRURI CALURI ANNIVERSARY BIRTHPLACE DEATHPLACE DEATHDATE EXPERTISE HOBBY INTEREST "
    "ORG-DIRECTORY NAME MAILER LABEL CLASS AGENT SORT-STRING".split()
)


def _property_or_not(match: re.Match[str]) -> str:
    key = match.group(1)[1:-1]
    return f"[{key!r}]" if key.upper() in _STANDARD_PROPERTIES else "[…]"


def readback_summary(items: int, differences: int) -> str:
    """`Read back 1,234 items: 0 differences`: a drill's result, or the counts a run kept of it, in words."""
    noun = "difference" if differences == 1 else "differences"
    return f"Read back {items:,} items: {differences:,} {noun}"


def where_lines(described: Iterable[Difference]) -> str:
    """The kinds and fields of `described` (`Difference.where`), each once, in order, joined by "; "."""
    return "; ".join(dict.fromkeys(d.where() for d in described))


def whole_item(kind: str, item: str) -> Difference:
    return Difference(kind, item, "(whole item)", "equal records", "records that compare unequal")


def differences_in(kind: str, item: str, expected: Any, found: Any, at: str = "") -> list[Difference]:
    """Every leaf field where `found` differs from `expected`, named by its path in the record."""
    if expected == found:
        return []
    if is_dataclass(expected) and type(expected) is type(found):
        out: list[Difference] = []
        for spec in fields(expected):
            out += differences_in(
                kind, item, getattr(expected, spec.name), getattr(found, spec.name), _join(at, spec.name)
            )
        return out
    if isinstance(expected, tuple) and isinstance(found, tuple):
        out = []
        for index, (a, b) in enumerate(zip_longest(expected, found, fillvalue=_Missing)):
            out += differences_in(kind, item, a, b, f"{at}[{index}]")
        return out
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        out = []
        for key in sorted(set(expected) | set(found), key=str):
            out += differences_in(kind, item, expected.get(key, _Missing), found.get(key, _Missing), f"{at}[{key!r}]")
        return out
    return [Difference(kind, item, at or "(value)", shown(expected), shown(found))]


class _MissingType:
    def __repr__(self) -> str:
        return ABSENT


_Missing: Any = _MissingType()


def _join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def shown(value: Any) -> str:
    """A value as a difference shows it: short, binary by size and hash, absent as "absent"."""
    if value is _Missing or value is None:
        return ABSENT
    if isinstance(value, bytes | bytearray):
        return f"{len(value):,} bytes (SHA-256 {hashlib.sha256(value).hexdigest()[:12]}…)"
    return short(repr(value))


def short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def contact_id(contact: Contact) -> str:
    return short(contact.uid)


def event_id(event: Event) -> str:
    return short(event.uid)


def note_id(note: Note) -> str:
    return short(note.id)
