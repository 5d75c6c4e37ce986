"""`support bulk-resend`: after an outage, re-send the latest verified archive to everyone whose delivery failed.

Why a command as well as the console page: an operator recovering from an
outage may have a shell and no browser session, and a long job is best left
running in a terminal (or restarted there with `--job` after an interruption:
each user is still sent to once, see `jobs.bulk_resend`). Refusals become one
`Error: …` line through `cli.one_line_errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import current_app
from flask.cli import with_appcontext

import jobs
from errors import InvalidInput
from jobs import bulk_resend
from jobs.audit import Actor
from store.accounts import find_user
from store.base import utcnow
from store.db import get_db
from store.staff import STAFF_ROLES


@click.group("support")
def support() -> None:
    """Support staff's jobs that span many users."""


def _staff(email: str) -> Actor:
    with get_db().session() as session:
        user = find_user(session, email)
        if user is None or user.role not in STAFF_ROLES or not user.is_active:
            raise InvalidInput(
                f"--as {email!r} is not an active support or admin account: give your own staff email.",
                [("as", "not staff")],
            )
        return Actor(user.id, user.email, user.role, "cli")


def _echo_progress(status: bulk_resend.JobStatus) -> None:
    click.echo(status.describe())


@contextmanager
def _first_line_only() -> Iterator[None]:
    """A refused filter in one line: `InvalidInput`'s field list is for forms and the API."""
    try:
        yield
    except InvalidInput as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None


@support.command("bulk-resend")
@click.option("--since", metavar="ISO", help="Failures from this time (ISO 8601; UTC unless a zone is given).")
@click.option("--until", metavar="ISO", help="…up to this time (exclusive).")
@click.option("--kind", type=click.Choice(bulk_resend.KINDS), help="Only deliveries to this kind of destination.")
@click.option("--host", metavar="HOST", help="Only S3 destinations at this endpoint host ('aws' for AWS itself).")
@click.option("--reason", help="Why (kept in the audit log with each re-send).")
@click.option("--as", "staff_email", required=True, metavar="STAFF_EMAIL", help="The staff member acting.")
@click.option("--dry-run", is_flag=True, help="Only show how many users and a sample; send nothing.")
@click.option("--job", "job_id", metavar="ID", help="Resume this job (after a pause or an interruption).")
@click.option("--per-minute", type=int, default=120, show_default=True, help="At most this many users a minute.")
@with_appcontext
def bulk_resend_command(
    since: str | None,
    until: str | None,
    kind: str | None,
    host: str | None,
    reason: str | None,
    staff_email: str,
    dry_run: bool,
    job_id: str | None,
    per_minute: int,
) -> None:
    """Re-send each affected user's latest verified archive (the same bytes) to their destinations.

    Run with --dry-run first: it prints the count and a sample. The real run
    prints its job id and progress; Ctrl-C (or a pause from the console) stops
    it between users, and `--job ID` continues it without re-sending to anyone twice.
    """
    with _first_line_only():
        actor, db = _staff(staff_email), get_db()
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as Flask
        resuming = job_id is not None  # a person says the earlier runner is gone: take the job over
        if job_id is None:
            flt = bulk_resend.parse_filter(since, until, kind, host)
            if dry_run:
                result = bulk_resend.dry_run(db, actor, flt, reason=reason or "", now=utcnow())
                click.echo(f"Dry run: {result.count} users would get their latest archive again ({flt.describe()}).")
                for c in result.sample:
                    click.echo(
                        f"  {c.email}  failed {c.failed_at:%Y-%m-%d %H:%M}  {c.destination}  "
                        f"archive of {c.archive_at:%Y-%m-%d %H:%M} ({c.archive_size} bytes)"
                    )
                if result.count > len(result.sample):
                    click.echo(f"  … and {result.count - len(result.sample)} more.")
                return
            job_id = bulk_resend.start(db, actor, flt, reason=reason or "", per_minute=per_minute, now=utcnow())
            click.echo(f"Started bulk re-send {job_id}. Continue it after an interruption with --job {job_id}.")
        elif dry_run or since or until:
            raise InvalidInput("--job resumes a job as it was started: leave out --since, --until and --dry-run.", [])
        else:
            with db.session() as session:
                if bulk_resend.status(session, job_id).paused:
                    bulk_resend.resume(db, actor, job_id, reason=reason or "", now=utcnow())
        done = bulk_resend.run(
            db, job_id, now=utcnow, kick=lambda: jobs.kick(app), on_progress=_echo_progress, take_over=resuming
        )
        click.echo(done.describe())


COMMANDS: list[click.Command] = [support]
