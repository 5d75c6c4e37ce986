"""Personal API tokens: create (the secret shown once), list, revoke, and find the user a token names.

Why only a SHA-256 is stored: a copy of the database (a backup, a support
dump) must not hand out working credentials. The secret has 256 random bits,
so a plain unsalted hash is enough, and a lookup by that hash costs the same
whatever the token: nothing about a stored secret can be learnt by timing
guesses. A revoked or expired token is refused on its very next request: every
request reads the row, nothing is cached.

Used by the JSON API (`web.api`) and the settings page alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from account.canonical import name_problem
from errors import InvalidInput
from store import ApiToken, Database

PREFIX = "lb_"
MAX_DAYS = 366
DEFAULT_DAYS = 90
# Writing last_used_at on every request would make every API read a write; once a minute is plenty.
_TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    """A token just made: `secret` is the only copy of the plaintext there will ever be."""

    token: ApiToken
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


NAME_LIMIT = 100  # the settings page's field and the API's document alike (they differed: user trial)
NAME_FIELD = "The token name"  # how `name_problem` names it, on the page and in the API alike
NAME_WORDS = f"Give the token a name of 1 to {NAME_LIMIT} characters, such as “backup script on my NAS”."


def create_token(session: Session, user_id: int, name: str, *, days: int, now: dt.datetime) -> NewToken:
    """Make a token for `user_id` that expires after `days` days (1 to 366)."""
    # Refused, not cleaned (`account.canonical.name_problem`): the name is shown in the token list and
    # the support console, where a control character or a right-to-left override would mislead (NUL too,
    # which PostgreSQL could not store anyway).
    name = name.strip()
    problems = []
    if not name or len(name) > NAME_LIMIT:
        problems.append(
            ("name", f"Give the token a name of 1 to {NAME_LIMIT} characters, e.g. the script that uses it.")
        )
    elif hidden := name_problem(NAME_FIELD, name):
        problems.append(("name", hidden))
    if not 1 <= days <= MAX_DAYS:
        problems.append(("expires_in_days", f"A token lasts from 1 to {MAX_DAYS} days."))
    if problems:
        raise InvalidInput("The token was not created: " + " ".join(m for _, m in problems), problems)
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id, name=name, token_sha256=digest(secret), created_at=now, expires_at=now + dt.timedelta(days)
    )
    session.add(token)
    session.flush()
    return NewToken(token=token, secret=secret)


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included (they say when they stopped)."""
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc()))
    )


def revoke_token(session: Session, user_id: int, token_id: str, *, now: dt.datetime) -> ApiToken | None:
    """Revoke one of the user's tokens (again is harmless); None if the user has no such token."""
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if token is not None and token.revoked_at is None:
        token.revoked_at = now
        session.flush()
    return token


def revoke_user_tokens(session: Session, user_id: int, *, now: dt.datetime) -> int:
    """Revoke every usable token of the user's at once (support, after a leak); how many."""
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def is_usable(token: ApiToken, now: dt.datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def authenticate(db: Database, secret: str, *, now: dt.datetime) -> int | None:
    """The id of the user `secret` belongs to, or None if it is unknown, revoked or expired."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    wanted = digest(secret)
    with db.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == wanted))
        if token is None or not hmac.compare_digest(token.token_sha256, wanted) or not is_usable(token, now):
            return None
        user_id, token_id, last_used = token.user_id, token.id, token.last_used_at
    if last_used is None or now - last_used >= _TOUCH_EVERY:
        with db.session(write=True) as session:
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return user_id
