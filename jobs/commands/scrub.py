"""`lifeboat scrub [EMAIL] [--deep|--light]`: check delivered archives again now (`jobs.scrub`).

Why a command beside the scheduled scrub: an operator who has just heard of a
provider's outage, or a user asking "is my copy still there?", wants the answer
now, not at the next weekly check.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from delivery.s3.inspection import HEALTHY
from jobs import get_context
from jobs.commands.base_url import warn_when_mailing
from jobs.commands.unknown_user import no_user
from jobs.scrub import REFUSED_HERE, Finding, scrub
from store.accounts import find_user
from store.db import get_db


@click.command("scrub")
@click.argument("email", required=False)
@click.option(
    "--deep/--light", default=None, help="Download each archive in full, or only look it up (default: by schedule)."
)
@with_appcontext
def scrub_command(email: str | None, deep: bool | None) -> None:
    """Check that the newest archive delivered to each S3 destination is still there as it arrived.

    With EMAIL, every S3 destination of that user now; without, those due
    (not checked for a week; a full download once a month). Exits 1 if any copy
    is missing, changed or unreadable, or could not be checked.
    """
    if email is not None:
        with get_db().session() as session:
            if find_user(session, email) is None:
                raise no_user(email)
    ctx = get_context()
    warn_when_mailing(ctx)  # the alert links to the destinations page
    found = scrub(ctx, email=email, deep=deep, tell_operator=_tell)
    if not found:
        # With EMAIL every destination is checked whatever its date: none found means none to check, not "not due".
        whose = f"{email} has no S3 destination with a delivered archive" if email is not None else None
        click.echo(f"Nothing to check: {whose or 'no S3 destination has a delivered archive that is due'}.")
        return
    for finding in found:
        if finding.state != REFUSED_HERE:  # those were said on stderr as they came (`_tell`)
            click.echo(_line(finding))
    bad = [f for f in found if f.state != HEALTHY]
    refused = sum(f.state == REFUSED_HERE for f in found)
    unchecked = f"; {refused} not checked (this process's settings, above)" if refused else ""
    click.echo(f"{len(found) - len(bad)} of {len(found)} healthy{unchecked}.")
    if bad:
        raise SystemExit(1)


def _line(finding: Finding) -> str:
    return f"destination {finding.destination_id} (user {finding.user_id}): {finding.line}"


def _tell(finding: Finding) -> None:
    """A check this process's own settings refused: the operator's to fix, said on stderr in one line."""
    click.echo(_line(finding), err=True)


COMMANDS = [scrub_command]
