"""`lifeboat check-versions [EMAIL] [--fix]`: find rows whose stored content version is not their record's.

Why an operator needs it: every way Lifeboat writes a row keeps its version
(`store.mapping`), which repeat exports and the fidelity drill trust; a row
edited by hand in SQL does not, and its next archives would hold its old bytes.
See `store.version_check`.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from jobs import get_context
from jobs.commands.unknown_user import no_user
from jobs.export_cache import remove_user_cache
from store.accounts import find_user
from store.db import get_db
from store.staff import STAFF_ROLES
from store.users import User
from store.version_check import check_versions

LISTED = 20  # stale items named per user; past that, counted


@click.command("check-versions")
@click.argument("email", required=False)
@click.option("--fix", is_flag=True, help="Write each stale row's true version and drop the user's export cache.")
@with_appcontext
def check_versions_command(email: str | None, fix: bool) -> None:
    """Check that each contact, event and note's stored version matches its data (after editing rows by hand).

    With EMAIL, that user; without, every user. Exits 1 if any row was stale and
    --fix was not given.
    """
    with get_db().session() as session:
        if email is not None:
            user = find_user(session, email)
            if user is None:
                raise no_user(email)
            ids = [user.id]
        else:
            ids = list(session.scalars(select(User.id).where(User.role.not_in(STAFF_ROLES)).order_by(User.id)))
    stale_users = 0
    for user_id in ids:
        with get_db().session(write=fix) as session:
            user = session.get(User, user_id)
            if user is None:
                continue  # deleted meanwhile
            found = check_versions(session, user, fix=fix)
            address = user.email
        if not found.stale:
            click.echo(f"{address}: {found.checked:,} items, every version matches.")
            continue
        stale_users += 1
        names = "; ".join(f"{kind} {item}" for kind, item in found.stale[:LISTED])
        more = f" and {len(found.stale) - LISTED:,} more" if len(found.stale) > LISTED else ""
        if fix:
            remove_user_cache(get_context().export_cache_dir, user_id)
            click.echo(
                f"{address}: {len(found.stale):,} of {found.checked:,} mended ({names}{more}); export cache dropped."
            )
        else:
            click.echo(
                f"{address}: {len(found.stale):,} of {found.checked:,} stale ({names}{more}). Run again with --fix."
            )
    if stale_users and not fix:
        raise SystemExit(1)


COMMANDS = [check_versions_command]
