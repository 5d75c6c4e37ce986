"""Which users lack a recent verified archive (the upgrade guard and export-all use this)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from store.base import utcnow
from store.db import Database
from store.runs import Archive
from store.users import User


def users_without_fresh_archive(database: Database, max_age: dt.timedelta) -> list[str]:
    """Emails of active users whose newest verified archive is older than `max_age` (or absent)."""
    cutoff = utcnow() - max_age
    fresh = (
        select(Archive.user_id)
        .where(Archive.verified_at.is_not(None), Archive.created_at >= cutoff, Archive.deleted_at.is_(None))
        .distinct()
    )
    with database.session() as session:
        return list(
            session.scalars(select(User.email).where(User.is_active.is_(True), User.id.not_in(fresh)).order_by(User.id))
        )
