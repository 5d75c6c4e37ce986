"""Which archives a retention policy keeps: the last N plus grandfather-father-son, as restic's `forget` does.

Why a pure function of its own: deleting a user's backups is the one
destructive thing delivery does, so the decision is made here, from a plain
list of (key, created_at, verified), where every case can be tested without a
bucket; `delivery.s3.pruning` only lists and deletes what this decides.

The rules follow restic's `forget --keep-last/--keep-daily/--keep-weekly/
--keep-monthly/--keep-yearly` (internal/data/snapshot_policy.go):

- archives are taken newest first (by when the archive was made, not when it
  was uploaded: a re-sent old archive is still old);
- keep-last N keeps the N newest;
- keep-daily N keeps, for each of the N newest days that have archives, the
  newest archive of that day; weekly uses ISO weeks, monthly and yearly the
  calendar. Days, weeks, months and years are counted in the user's time zone;
- each rule counts on its own and an archive is kept if any rule keeps it
  (one archive can be the daily, the weekly and the monthly at once);
- while a rule has counts left when the list runs out, the oldest archive is
  kept too (restic >= 0.14: "maximizes the history length kept").

Where Lifeboat differs, and why:

- the newest *verified* archive is always kept, whatever the policy (restic
  knows no "verified"; here it means Lifeboat checked that very object in the
  bucket against the archive's size and SHA-256 when it delivered it);
- when no archive in the list is verified, nothing is deleted: pruning is only
  safe once a good copy is known to exist;
- an empty policy (every count 0) keeps everything: "off" is the default, so
  nothing changes for a user until they choose (restic refuses to run instead);
- a bucket is "seen" once, so a time zone whose clocks jump back across
  midnight does not make one day keep two archives (restic compares with the
  previous archive's bucket only);
- no `-1` ("keep all daily") and no `--keep-within`/`--keep-hourly`: a count of
  0 switches a rule off, and exports run at most hourly-rarely, daily at most often.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from errors import InvalidInput

MAX_COUNT = 10_000  # per rule; 27 years of daily archives is more than anyone keeps in one bucket

# The rules, in restic's order: policy field, the setting it is stored under, the unit it counts.
RULES: tuple[tuple[str, str, str, str], ...] = (
    ("last", "retention_keep", "archive", "archives"),
    ("daily", "retention_daily", "day", "days"),
    ("weekly", "retention_weekly", "week", "weeks"),
    ("monthly", "retention_monthly", "month", "months"),
    ("yearly", "retention_yearly", "year", "years"),
)
SETTING_NAMES = tuple(setting for _, setting, _, _ in RULES)

NEWEST_VERIFIED = "newest verified"
NO_POLICY = "no retention policy: everything is kept"
NO_VERIFIED = "no verified archive yet: nothing is deleted"


@dataclass(frozen=True)
class RetentionPolicy:
    """How many to keep under each rule; 0 switches a rule off, all 0 keeps everything."""

    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name, setting, _, units in RULES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                problems.append((setting, f"Keep a whole number of {units} from 0 (off) to {MAX_COUNT}."))
        if problems:
            raise InvalidInput("The retention policy needs fixing.", problems)

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_settings(cls, values: Mapping[str, object]) -> RetentionPolicy:
        """From a destination's stored settings (`retention_keep`, `retention_daily`, ...); absent or None is 0."""
        counts: dict[str, Any] = {}  # any JSON value: __post_init__ refuses what is not a count, in words
        for name, setting, _, _ in RULES:
            value = values.get(setting)
            counts[name] = 0 if value is None else value
        return cls(**counts)

    def as_settings(self) -> dict[str, int | None]:
        """Every setting name, None for a rule that is off (so saving a policy also clears the old one)."""
        return {setting: (getattr(self, name) or None) for name, setting, _, _ in RULES}

    def summary(self) -> str:
        """The policy in plain words, e.g. "Keeps the last 3, one a day for 7 days, one a week for 4 weeks"."""
        if not self.active:
            return "Keeps every archive (no retention policy)."
        parts = []
        if self.last:
            parts.append("the newest archive" if self.last == 1 else f"the last {self.last}")
        for name, _, unit, units in RULES[1:]:
            count = getattr(self, name)
            if count:
                parts.append(f"one a {unit} for {count} {unit if count == 1 else units}")
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"Keeps {text}; never the newest verified archive."


@dataclass(frozen=True)
class Candidate:
    """One archive in a destination: its key, when the archive was made (aware), whether Lifeboat verified it there."""

    key: str
    created_at: dt.datetime
    verified: bool = False


@dataclass(frozen=True)
class Decision:
    """What the policy does with one archive; no reasons means it is deleted."""

    key: str
    created_at: dt.datetime
    verified: bool
    reasons: tuple[str, ...]

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class Plan:
    """Every archive's decision, newest first, and a note when the policy was not applied at all."""

    decisions: tuple[Decision, ...]
    note: str | None = None

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]

    @property
    def delete(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


def _day(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d}"


def _week(when: dt.datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _month(when: dt.datetime) -> str:
    return f"{when:%Y-%m}"


def _year(when: dt.datetime) -> str:
    return f"{when:%Y}"


_BUCKETS: dict[str, Callable[[dt.datetime], str]] = {
    "daily": _day,
    "weekly": _week,
    "monthly": _month,
    "yearly": _year,
}


def plan_retention(
    candidates: Iterable[Candidate],
    policy: RetentionPolicy,
    zone: dt.tzinfo,
    *,
    pinned: Mapping[str, str] | None = None,
) -> Plan:
    """Decide keep or delete for each archive, with the reason each is kept (see the module docstring).

    `pinned` maps keys that must stay whatever the policy says to the reason
    shown (e.g. the archive delivered a moment ago: "just delivered").
    """
    unique = {c.key: c for c in candidates}
    ordered = sorted(unique.values(), key=lambda c: (c.created_at, c.key), reverse=True)
    reasons: dict[str, list[str]] = {c.key: [] for c in ordered}
    for key, why in (pinned or {}).items():
        if key in reasons:
            reasons[key].append(why)
    note = None
    if not policy.active:
        note = NO_POLICY
    elif not any(c.verified for c in ordered):
        note = NO_VERIFIED
    if note is not None:
        return Plan(tuple(Decision(c.key, c.created_at, c.verified, (note,)) for c in ordered), note)

    newest_verified = next(c for c in ordered if c.verified)
    reasons[newest_verified.key].append(NEWEST_VERIFIED)
    for candidate in ordered[: policy.last]:  # restic's oldest-kept rule adds nothing here: all are kept
        reasons[candidate.key].append(f"last {policy.last}")
    for name, _, _, units in RULES[1:]:
        count = getattr(policy, name)
        if not count:
            continue
        bucket_of = _BUCKETS[name]
        seen: set[str] = set()
        for candidate in ordered:
            if len(seen) == count:
                break
            bucket = bucket_of(candidate.created_at.astimezone(zone))
            if bucket not in seen:
                seen.add(bucket)
                reasons[candidate.key].append(f"{name} {bucket}")
        else:
            # The list ran out with counts left (restic >= 0.14): the oldest archive stays too.
            oldest = ordered[-1] if ordered else None
            if oldest is not None and not any(r.startswith(f"{name} ") for r in reasons[oldest.key]):
                reasons[oldest.key].append(f"oldest (fewer than {count} {units} so far)")
    decisions = tuple(Decision(c.key, c.created_at, c.verified, tuple(dict.fromkeys(reasons[c.key]))) for c in ordered)
    return Plan(decisions)
