"""`generate-account EMAIL [--size typical|heavy] [--scale X] [--seed N]`: an account of generated sample data.

Why a command: demos and support rehearsals need a large account to show a long
export (progress by stage, cancel, the fidelity drill), and until now the only way
to make one was Python or the benchmark script (user trial 9). The data comes from
`account.sample.generate_account`, the same generator the tests and benchmarks use,
and goes in through `replace_account` in one transaction, as `import-account` does:
nothing changes unless all of it was stored.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from account.canonical import email_address
from account.sample import HEAVY, TYPICAL, SampleSize, generate_account
from exporters.archive.counts import account_counts, counts_line
from jobs.staff_accounts import refuse_staff_data
from store.accounts import AccountReader, find_user, replace_account
from store.db import get_db

SIZES: dict[str, SampleSize] = {"typical": TYPICAL, "heavy": HEAVY}
SIZES_SAID = "; ".join(
    f"{name}: {s.contacts:,} contacts, {s.events:,} events, {s.notes:,} notes" for name, s in SIZES.items()
)


@click.command("generate-account")
@click.argument("email")
@click.option(
    "--size",
    type=click.Choice(sorted(SIZES)),
    default="typical",
    show_default=True,
    help=SIZES_SAID + ".",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiply the size's contacts, events and notes (heavy x 10 exports for well over a minute).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Another seed gives other (repeatable) data.")
@click.option("--replace", is_flag=True, help="Overwrite the contacts, calendars and notes the account already has.")
@with_appcontext
def generate_account_command(email: str, size: str, scale: float, seed: int, replace: bool) -> None:
    """Create (or with --replace, refill) EMAIL's account with generated contacts, calendars and notes.

    All or nothing, as `import-account`: the account changes only if every record was stored.
    """
    try:
        email = email_address(email)
    except ValueError as exc:
        raise click.ClickException(f"{exc}. Give the account's address, e.g. alice@example.com.") from None
    with get_db().session() as session:
        refuse_staff_data(session, email)
        user = find_user(session, email)
        held = AccountReader(session, user).counts().as_dict() if user is not None else {}
    if any(held.values()) and not replace:  # someone's real data is never overwritten by a typo
        raise click.ClickException(
            f"{email} already holds data ({counts_line(held)}): pass --replace to overwrite it with generated data."
        )
    account = generate_account(email, SIZES[size].scaled(scale), seed=seed)
    with get_db().session(write=True) as session:
        replace_account(session, account)
    click.echo(f"Generated {email}: {counts_line(account_counts(account))}.")


COMMANDS = [generate_account_command]
