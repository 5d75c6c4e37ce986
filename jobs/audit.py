"""The audit trail of staff actions: one row per action or sign-in, written with the action itself.

Why in the caller's transaction: an action and its audit row commit together or
not at all, so there is never an action without a row, or a row for an action
that was rolled back. Why a request key: a double click, a retried API call or a
resubmitted form carries the same key; the second finds the first's row and
does nothing, so every action happens once (`already_done`).

Rows are never updated or deleted (there is no function for it here, and the
database refuses both: migration 0007).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import AuditEvent, User


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member as signed in (role at the time), and the address they came from."""

    user_id: int | None
    email: str
    role: str
    address: str | None = None

    @classmethod
    def of(cls, user: User, address: str | None = None) -> Actor:
        return cls(user_id=user.id, email=user.email, role=user.role, address=address)


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    now: dt.datetime,
    target: User | None = None,
    reason: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    request_key: str | None = None,
) -> AuditEvent:
    """Add one audit row to `session` (the action's own write transaction)."""
    event = AuditEvent(
        at=now,
        actor_id=actor.user_id,
        actor_email=actor.email,
        actor_role=actor.role,
        action=action,
        target_user_id=target.id if target is not None else None,
        target_email=target.email if target is not None else None,
        reason=reason,
        address=actor.address,
        outcome=outcome,
        detail=json.dumps(detail or {}, sort_keys=True),
        request_key=request_key,
    )
    session.add(event)
    session.flush()
    return event


def already_done(session: Session, request_key: str | None) -> AuditEvent | None:
    """The row of an earlier action with this request key, if any: then the action must not run again."""
    if not request_key:
        return None
    return session.scalar(select(AuditEvent).where(AuditEvent.request_key == request_key))
