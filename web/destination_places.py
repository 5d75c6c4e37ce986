"""Where a user's archives go now, in words: the destinations that receive them, and those still waiting.

Why: the overview and settings listed an email address whose owner had not
confirmed yet as a place archives go ("Each archive also goes to 1 place:
email friend@example.net"), while the export skips it (`jobs.destination_consent`)
and the run page said "No destination is set" (user trial).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jobs.copy_checks import CopyCheck
from jobs.destination_consent import is_account_address, receives
from jobs.destination_setup import standing_status
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


@dataclass(frozen=True)
class Receiving:
    """A destination that gets archives, and whether it works: the overview's "Where archives go"."""

    id: int
    label: str
    error: str | None  # why it is not working now (its status message), None while it works
    copy: CopyCheck | None  # a standing bad check of its copy: said in its own card above

    @property
    def words(self) -> str:
        """`not working` or `copy missing`: the state after its name; "" when it works."""
        if self.copy is not None:
            return self.copy.words.lower()
        return "not working" if self.error is not None else ""


def receiving_states(receiving: Iterable[Destination], checks: dict[int, CopyCheck], user: User) -> list[Receiving]:
    """Each receiving destination with its standing status (`jobs.destination_setup.standing_status`).

    Why: the overview listed "Moto; Broken" while Broken's bucket did not exist
    and the support queue listed it as "Destination in error" (user trial).
    """
    found = []
    for destination in receiving:
        check = checks.get(destination.id)
        status, message, _confirmed = standing_status(destination, check, user)
        bad = check if check is not None and check.bad and check.current else None
        error = (message or "The last test or delivery failed.") if status == "error" else None
        found.append(Receiving(destination.id, destination.label, error, bad))
    return found
