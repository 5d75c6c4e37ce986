"""Staff API tokens (for /api/v1/support): made, listed and revoked by an admin or an operator, each audited.

Why apart from `jobs.api_tokens`: that module makes a user's own tokens for
their own data; these act on other people's accounts, so only an admin (or the
operator at the command line) hands them out, the staff member must hold a
staff role, and every making and revoking is an audit row written in the same
transaction as the token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.api_tokens import NewToken, create_token, is_usable, revoke_token
from jobs.audit import Actor, record
from jobs.staff_accounts import StaffError
from jobs.support_actions import check_reason, check_request_key
from store import ApiToken, User
from store.staff import STAFF_ROLES


@dataclass(frozen=True)
class StaffTokenRow:
    """One token as the admin page lists it: whose, what for, until when; never its secret."""

    id: str
    owner_email: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    usable: bool


def make_staff_token(
    session: Session,
    actor: Actor,
    staff: User,
    name: str,
    *,
    days: int,
    reason: str,
    now: dt.datetime,
    request_key: str | None = None,
) -> NewToken:
    """A new token for `staff` (support or admin), with its `staff_token.create` audit row."""
    reason, request_key = check_reason(reason), check_request_key(request_key)
    if staff.role not in STAFF_ROLES or not staff.is_active:
        raise StaffError(f"{staff.email} is not an active support or admin account: create it first.")
    made = create_token(session, staff.id, name, days=days, now=now)
    record(
        session,
        actor,
        "staff_token.create",
        now=now,
        target=staff,
        reason=reason,
        detail={"token_id": made.token.id, "name": made.token.name, "days": days},
        request_key=request_key,
    )
    return made


def revoke_staff_token(
    session: Session, actor: Actor, token_id: str, *, reason: str, now: dt.datetime, request_key: str | None = None
) -> ApiToken:
    """Revoke one staff member's token now, with its `staff_token.revoke` audit row."""
    reason, request_key = check_reason(reason), check_request_key(request_key)
    token = session.get(ApiToken, token_id)
    owner = session.get(User, token.user_id) if token is not None else None
    if token is None or owner is None or owner.role not in STAFF_ROLES:
        raise StaffError(f"There is no staff API token {token_id!r}.")
    revoke_token(session, owner.id, token.id, now=now)
    record(
        session,
        actor,
        "staff_token.revoke",
        now=now,
        target=owner,
        reason=reason,
        detail={"token_id": token.id, "name": token.name},
        request_key=request_key,
    )
    return token


def list_staff_tokens(session: Session, *, now: dt.datetime) -> list[StaffTokenRow]:
    """Every staff member's tokens, usable ones first, then newest first."""
    rows = session.execute(
        select(ApiToken, User.email)
        .join(User, User.id == ApiToken.user_id)
        .where(User.role.in_(STAFF_ROLES))
        .order_by(ApiToken.created_at.desc())
    ).all()
    found = [
        StaffTokenRow(
            id=token.id,
            owner_email=email,
            name=token.name,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            usable=is_usable(token, now),
        )
        for token, email in rows
    ]
    return sorted(found, key=lambda row: not row.usable)
