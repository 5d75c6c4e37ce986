"""The one line a command says when no account has the address it was given.

Why one function: a user trial typed `lifeboat export not-an-email` and was
told "No user 'not-an-email'. Import one …", as if the address were fine and
only unknown. A value that is no email address at all is said to be so, in
the words the web and API validation use (`account.canonical.email_address`).
"""

from __future__ import annotations

import click

from account.canonical import email_address

SIGN_IN = ": give the email address the account signs in with."
IMPORT = ". Import one with `lifeboat import-account FILE`."


def no_user(email: str, fix: str = SIGN_IN) -> click.ClickException:
    """The error for an `email` no account has: "… is not an email address (…)", or "No user …" and `fix`."""
    try:
        email_address(email)
    except ValueError as exc:
        return click.ClickException(f"{str(exc).splitlines()[0]}{SIGN_IN}")
    return click.ClickException(f"No user {email!r}{fix}")
