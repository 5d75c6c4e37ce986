"""Restore an archive into the store."""

from __future__ import annotations

from pathlib import Path

from account.records import Account
from errors import InvalidInput
from exporters.archive.reader import read_account_and_kinds
from store.accounts import replace_account
from store.db import Database


def restore_archive(database: Database, path: Path, email: str) -> Account:
    """Verify and read the archive, then replace `email`'s data with it in one transaction.

    Only the kinds of data the archive holds are replaced: one made with notes only
    leaves the contacts and calendars in the store as they are.
    """
    try:
        account, kinds = read_account_and_kinds(path, email=email)
    except InvalidInput:
        raise
    except (ValueError, KeyError) as exc:
        raise InvalidInput(f"The archive cannot be read: {exc}") from exc
    with database.session(write=True) as session:
        replace_account(session, account, kinds)
    return account
