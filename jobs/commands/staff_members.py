"""Staff account commands: `users create EMAIL --role support|admin`, `users set-role EMAIL --role ROLE`,
and `users token EMAIL --name NAME` (a staff API token for /api/v1/support).

Registered by the top-level `cli.init_app` with the other job commands; refusals
(`jobs.staff_accounts.StaffError`, a `UserError`) become one `Error: …` line
through `cli.one_line_errors`. Changes made here are audited like the admin
page's, with the operator's login name as the actor.
"""

from __future__ import annotations

import getpass
import sys
import warnings

import click
from flask import current_app
from flask.cli import with_appcontext

from jobs.api_tokens import MAX_DAYS
from jobs.audit import Actor
from jobs.staff_accounts import StaffError, create_staff, require_second_factor_keys, set_role
from jobs.staff_tokens import make_staff_token
from store.accounts import find_user
from store.base import utcnow
from store.db import get_db
from store.staff import ROLES, STAFF_ROLES


def operator() -> Actor:
    """The person at the command line, as the audit log names them."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Actor(user_id=None, email=f"cli:{name}", role="operator")


@click.group("users")
def users() -> None:
    """Support and admin accounts."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise StaffError("--password-stdin read no password: pipe one line holding it.")
        return line.rstrip("\r\n")
    try:
        # No terminal to hide the typing on (cron, a pipe, ssh without -t): getpass would warn in three lines
        # and read the password in the clear; the warning is the sign there is none, so it becomes the refusal.
        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    except (click.Abort, getpass.GetPassWarning):  # end of input, or no terminal: one line, not "Aborted!"
        raise StaffError(UNANSWERED) from None


UNANSWERED = "No password given: type it twice when asked, or pipe it with --password-stdin."


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True, help="support or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--reason", default="created at the command line", show_default=True, help="For the audit log.")
@with_appcontext
def create_command(email: str, role: str, password_stdin: bool, reason: str) -> None:
    """Create a support or admin account for EMAIL, with a password (asked twice, hidden).

    They enrol an authenticator app (TOTP) when they first sign in.
    """
    require_second_factor_keys(current_app.config)
    password = _read_password(password_stdin)
    with get_db().session(write=True) as session:
        user = create_staff(session, operator(), email, role, password=password, reason=reason, now=utcnow())
        address = user.email
    click.echo(f"Created {role} account {address}. They enrol an authenticator app at their first sign-in.")


@users.command("set-role")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--reason", required=True, help="Why: it goes into the audit log.")
@with_appcontext
def set_role_command(email: str, role: str, reason: str) -> None:
    """Change EMAIL's role (user, support or admin); their sessions end so it applies at once."""
    with get_db().session(write=True) as session:
        user = set_role(session, operator(), email, role, reason=reason, now=utcnow())
        address = user.email
    click.echo(f"{address} is now {role}.")


@users.command("token")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. the script that uses it.")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=30, show_default=True, help="Days until it expires.")
@click.option("--reason", required=True, help="Why: it goes into the audit log.")
@with_appcontext
def token_command(email: str, name: str, days: int, reason: str) -> None:
    """Make a staff API token for EMAIL (support or admin) and print it once.

    The support API acts on other people's accounts, so its tokens are handed
    out only here and by an admin at /admin/staff/tokens, each audited
    (`jobs.staff_tokens`). An admin revokes it there; deactivating the account
    stops it at once.
    """
    with get_db().session(write=True) as session:
        user = find_user(session, email)
        if user is None:
            raise StaffError(
                f"There is no account {email}: create it with `users create {email} --role support` first."
            )
        if user.role not in STAFF_ROLES:
            raise StaffError(
                f"{user.email} is a user account, and staff tokens are for support and admin accounts: give it a role "
                f"first with `users set-role {user.email} --role support --reason …`."
            )
        secret = make_staff_token(session, operator(), user, name, days=days, reason=reason, now=utcnow()).secret
    click.echo(secret)
    click.echo(f"Staff API token for {email}, valid {days} days: shown only this once.", err=True)


COMMANDS: list[click.Command] = [users]
