"""Where a user's archives go now, in words: the destinations that receive them, and those still waiting.

Why: the overview and settings listed an email address whose owner had not
confirmed yet as a place archives go ("Each archive also goes to 1 place:
email friend@example.net"), while the export skips it (`jobs.destination_consent`)
and the run page said "No destination is set" (user trial).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jobs.destination_consent import is_account_address, receives
from store import Destination, User


@dataclass(frozen=True)
class Waiting:
    """An enabled destination that gets nothing until someone confirms, and the few words saying who."""

    label: str
    words: str  # "waiting for its owner to confirm"

    @property
    def line(self) -> str:
        return f"{self.label} — {self.words}"


@dataclass(frozen=True)
class Places:
    """The enabled destinations: those archives go to now, and those waiting for a confirmation."""

    receiving: list[Destination]
    waiting: list[Waiting]


def places(destinations: Iterable[Destination], user: User) -> Places:
    """Split `user`'s `destinations` (disabled ones left out) into those that receive and those waiting."""
    receiving: list[Destination] = []
    waiting: list[Waiting] = []
    for destination in destinations:
        if not destination.enabled:
            continue
        if receives(destination, user):
            receiving.append(destination)
        else:
            waiting.append(Waiting(destination.label, waiting_words(destination, user)))
    return Places(receiving, waiting)


def waiting_words(destination: Destination, user: User) -> str:
    """Who must confirm before `destination` (a waiting email address) gets anything."""
    if is_account_address(destination, user):
        return "waiting until you confirm your account's address"
    return "waiting for its owner to confirm"
