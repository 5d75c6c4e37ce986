"""Where a run's archive arrived and where it did not, named as people write places: an address, a bucket folder.

Why: a run that failed on one destination while another got its copy read
"failed" in the API with nothing about the copy, and its email said "Your
Lifeboat export failed … It did arrive at: mailto:demo-copy@example.net" (user
trial). The API's `delivered_to` and the failure email name each place the
same way: `demo-copy@example.net`, `s3://bucket/prefix`, never a mailto: URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.s3.settings import folder
from store import DeliveryAttempt, Destination


@dataclass(frozen=True)
class Places:
    """One run's destinations in words: where its archive arrived, and where it did not (with why)."""

    arrived: list[str]
    missed: list[tuple[str, str]]  # (place, the last attempt's message)


def place_words(location: str | None, destination: Destination | None) -> str:
    """`demo-copy@example.net` or `s3://bucket/prefix`: the place a delivery went to, as its owner names it.

    An S3 destination is named by its bucket and folder (its settings), not the
    object's key; an email by the address the receipt names (`mailto:` dropped),
    or the one set when nothing arrived.
    """
    if destination is not None and destination.kind == "s3":
        settings = destination.settings
        where = f"s3://{settings.get('bucket', '')}/{folder(str(settings.get('prefix', 'lifeboat')))}"
        return where.rstrip("/")
    if location and location.startswith("mailto:"):
        return location.removeprefix("mailto:")
    if location and location.startswith("s3://"):
        return location.rsplit("/", 1)[0] if location.count("/") > 3 else location
    if destination is not None and destination.kind == "email":
        return str(destination.settings.get("to") or "your account's email address")
    if location:
        return location
    return destination.label if destination is not None else "a removed destination"


def delivered_places(session: Session, run_ids: Iterable[str]) -> dict[str, list[str]]:
    """Where each of `run_ids` arrived, in words, in delivery order; a run that arrived nowhere is left out."""
    return {run_id: places.arrived for run_id, places in run_places(session, run_ids).items() if places.arrived}


def run_places(session: Session, run_ids: Iterable[str]) -> dict[str, Places]:
    """Each run's places, one query for them all: a destination counts once, by its last attempt."""
    ids = list(run_ids)
    rows = session.execute(
        select(DeliveryAttempt, Destination)
        .outerjoin(Destination, Destination.id == DeliveryAttempt.destination_id)
        .where(DeliveryAttempt.run_id.in_(ids))
        .order_by(DeliveryAttempt.id)
    ).all()
    last: dict[str, dict[object, tuple[DeliveryAttempt, Destination | None]]] = {run_id: {} for run_id in ids}
    for attempt, destination in rows:
        key = attempt.destination_id if attempt.destination_id is not None else attempt.location
        last[attempt.run_id][key] = (attempt, destination)  # later attempts replace earlier ones
    found = {}
    for run_id, by_place in last.items():
        arrived, missed = [], []
        for tried, where in by_place.values():
            place = place_words(tried.location, where)
            if tried.outcome == "delivered":
                arrived.append(place)
            else:
                missed.append((place, tried.message))
        found[run_id] = Places(_unique(arrived), missed)
    return found


def _unique(places: list[str]) -> list[str]:
    return list(dict.fromkeys(places))


__all__ = ["Places", "delivered_places", "place_words", "run_places"]
