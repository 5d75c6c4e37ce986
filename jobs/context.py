"""What a run needs to execute, gathered once from the app's configuration.

Why a plain object: the same executor runs in the web process's thread pool,
in Celery workers and in tests with a fake clock; none of them should reach
for `current_app` halfway through a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from delivery.contract import Delivery
from exporters.archive.signature import KeyRing, SigningKey
from jobs.run_lifecycle import RetryPolicy
from store import Database, ExportRun, User
from store.archive_files import ArchiveFiles, LocalArchiveFiles
from store.base import utcnow


class Destinations(Protocol):
    """The user's enabled destinations as `(destination id, backend)` pairs."""

    def __call__(self, session: Session, user: User, /) -> Sequence[tuple[int | None, Delivery]]: ...


class Notifier(Protocol):
    """Tell the user a run failed for good (by email in production)."""

    def __call__(self, user: User, run: ExportRun, /) -> None: ...


class OwnEmail(Protocol):
    """The user's own email address as a destination (a support re-send "to email"): `[(None, backend)]`."""

    def __call__(self, user: User, /) -> Sequence[tuple[int | None, Delivery]]: ...


class NoticeSender(Protocol):
    """Send a short plain-text notice from the service to one address (the operator's mail server).

    Returns False when there is no mail server to send it with (so nobody is told
    "emailed" when it was not); True or None when it went out. Raises if sending failed.
    """

    def __call__(self, to: str, subject: str, text: str, /) -> bool | None: ...


def no_notice(_to: str, _subject: str, _text: str) -> bool:
    return False


def no_own_email(_user: User) -> Sequence[tuple[int | None, Delivery]]:
    return ()


def no_destinations(_session: Session, _user: User) -> Sequence[tuple[int | None, Delivery]]:
    return ()


def no_notifier(_user: User, _run: ExportRun) -> None:
    return None


@dataclass
class JobContext:
    db: Database
    archive_dir: Path  # ARCHIVE_DIR: where archives live unless `archive_files` says otherwise
    vcard_version: str = "3.0"  # the server's default; a user's own option wins
    # A one-off choice for every export through this context (`flask export --vcard-version`).
    vcard_override: str | None = None
    lease: dt.timedelta = dt.timedelta(minutes=2)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    destinations: Destinations = no_destinations
    own_email: OwnEmail = no_own_email
    notify_failure: Notifier = no_notifier
    # Alerts that are not about one run (jobs.missed_runs); their links start with `base_url`.
    send_notice: NoticeSender = no_notice
    base_url: str = "http://127.0.0.1:5000"
    download_link: Callable[[str, int], str | None] = lambda _archive_id, _user_id: None
    clock: Callable[[], dt.datetime] = utcnow
    # Only for tests that kill a run mid-export: called with each progress update.
    on_progress: Callable[[str, int], None] | None = None
    # Where archive files live; None means the folder `archive_dir` (the embedded default).
    archive_files: ArchiveFiles | None = None
    # Each user's export item cache (`jobs.export_cache`); None means `export-cache` beside `archive_dir`.
    item_cache_dir: Path | None = None
    # The service's key that signs each archive's manifest (SIGNING_KEYS); None: archives are unsigned.
    signing_key: SigningKey | None = None

    @property
    def signing_keys(self) -> KeyRing | None:
        """The published key set (active and retired public keys) that checks archives' signatures."""
        return None if self.signing_key is None else self.signing_key.ring

    @property
    def export_cache_dir(self) -> Path:
        """Local disk, beside the archives (not inside: nothing there may look like an archive)."""
        return self.item_cache_dir or self.archive_dir.parent / "export-cache"

    @property
    def files(self) -> ArchiveFiles:
        """The archive store every run, download and clean-up goes through."""
        if self.archive_files is None:
            self.archive_files = LocalArchiveFiles(self.archive_dir)
        return self.archive_files
