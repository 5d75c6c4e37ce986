"""Two users with everything a user can own, for the access-control tests (tests/web/test_route_access.py).

Why one builder for both: the victim and the attacker must own the same kinds
of things (a finished run with its archive, a queued run, a destination, an
API token, a signed download link), so every id the attacker's own requests
use has a twin of the victim's to try instead. Built once per module: the
exports cost most of the time, and the walks only read (what could change is
checked by `snapshot` after every request).
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select

from account.records import Account
from jobs import api_tokens, get_context, run_lifecycle
from jobs.destination_backends import Registry
from jobs.destination_confirmation import Links
from jobs.destination_setup import add_destination
from jobs.download_links import archive_parts, member_chunks
from store import Base, Database, ExportRun, User, get_db
from store.accounts import replace_account
from store.base import utcnow
from tests.web.test_downloads import _export, _link
from web.account_passwords import reset_link
from web.signup import confirm_link


@dataclass(frozen=True)
class Holder:
    """One user and the ids, secrets and bytes of what they own."""

    user_id: int
    email: str
    password: str
    run_id: str  # delivered, with `archive_id`
    active_run_id: str  # queued: the one a cancel could still stop
    archive_id: str
    archive_sha256: str
    archive_relpath: str
    archive_bytes: bytes
    part_name: str  # one file inside the archive
    part_bytes: bytes
    part_stored: bytes  # the part as the zip holds it (deflated): what a leaked archive would carry
    destination_id: int
    destination_to: str
    token_id: str
    token: str  # the API token's secret
    link_id: str
    link_token: str  # the signed part of /d/<token>
    confirm_token: str
    reset_token: str
    destination_confirm_token: str  # the link mailed to `destination_to` (it waits for its owner's yes)

    @property
    def link_path(self) -> str:
        return f"/d/{self.link_token}"

    def identifiers(self) -> dict[str, str]:
        """Everything that names this user's things; none may reach another user unless they sent it."""
        return {
            "email": self.email,
            "run id": self.run_id,
            "active run id": self.active_run_id,
            "archive id": self.archive_id,
            "archive SHA-256": self.archive_sha256,
            "destination address": self.destination_to,
            "API token id": self.token_id,
            "API token": self.token,
            "link id": self.link_id,
            "link token": self.link_token,
            "confirmation token": self.confirm_token,
            "reset token": self.reset_token,
            "destination confirmation token": self.destination_confirm_token,
        }


# Argon2 at its lightest: the hash names its own parameters, so the app's sign-in checks it in
# milliseconds instead of the ~0.2 s (on a busy machine more) of RFC 9106's defaults, which a
# module signing in five times would otherwise spend. Which hash a user has is not under test here.
_hash_password = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash


def make_holder(app: Flask, account: Account, password: str) -> Holder:
    """Store `account` with a password, export it once, then give it a queued run, a destination,
    a token and a link (the destination comes after the export, so nothing is delivered anywhere)."""
    db = get_db(app)
    with db.session(write=True) as session:
        user = replace_account(session, account)
        user.password_hash = _hash_password(password)
        user_id = user.id
    archive = _export(app, db, user_id)
    link_id, link_path = _link(app, db, archive)
    files = get_context(app).files
    part = next(p.path for p in archive_parts(files, archive) if p.path.startswith("contacts/"))
    archive_bytes = (Path(app.config["ARCHIVE_DIR"]) / archive.relpath).read_bytes()
    with db.session(write=True) as session:
        run_id = session.scalar(select(ExportRun.id).where(ExportRun.archive_id == archive.id))
        active, _ = run_lifecycle.request_run(session, user_id, "manual", now=utcnow())
        row = session.get(User, user_id)
        assert row is not None and run_id is not None
        to = account.email.replace("@", ".backup@")
        registry = Registry(dict(app.config))
        destination = add_destination(session, registry, row, "email", to, {"to": to})
        destination_confirm = Links.of(registry).url(destination)
        token = api_tokens.create_token(session, user_id, f"{account.email} script", days=30, now=utcnow())
        with app.test_request_context():
            confirm, reset = confirm_link(row), reset_link(row)
        active_id, destination_id, token_id = active.id, destination.id, token.token.id
    return Holder(
        user_id=user_id,
        email=account.email,
        password=password,
        run_id=run_id,
        active_run_id=active_id,
        archive_id=archive.id,
        archive_sha256=archive.sha256,
        archive_relpath=archive.relpath,
        archive_bytes=archive_bytes,
        part_name=part,
        part_bytes=b"".join(member_chunks(files, archive, part)),
        part_stored=_stored_member(archive_bytes, part),
        destination_id=destination_id,
        destination_to=to,
        token_id=token_id,
        token=token.secret,
        link_id=link_id,
        link_token=link_path.removeprefix("/d/"),
        confirm_token=_last_segment(confirm),
        reset_token=_last_segment(reset),
        destination_confirm_token=_last_segment(destination_confirm),
    )


def _stored_member(archive: bytes, name: str) -> bytes:
    """A member's bytes as stored in the zip, read from its local header (APPNOTE 4.3.7).

    Why these and not windows of the whole file: two archives by the same exporter share
    headers and common members; a member made of the user's own contacts shares nothing.
    """
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        info = opened.getinfo(name)
    name_length, extra_length = struct.unpack_from("<HH", archive, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    return archive[start : start + info.compress_size]


def _last_segment(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def snapshot(db: Database, holder: Holder, archive_dir: Path) -> dict[str, Any]:
    """Every row of the user's (their user row, each table with a `user_id`, each with a `run_id`
    of theirs) and whether their archive file is intact: equal snapshots mean nothing changed.

    Read from the tables, not a list of models, so a table added later is covered too.
    `last_used_at` is left out: using one's own token is not a change another user made.
    """
    found: dict[str, Any] = {}
    with db.session() as session:
        runs = list(session.scalars(select(ExportRun.id).where(ExportRun.user_id == holder.user_id)))
        for table in Base.metadata.sorted_tables:
            if table.name == User.__tablename__:
                where = table.c.id == holder.user_id
            elif "user_id" in table.c:
                where = table.c.user_id == holder.user_id
            elif "run_id" in table.c:
                where = table.c.run_id.in_(runs)
            else:
                continue
            rows = session.execute(select(table).where(where)).mappings()
            found[table.name] = sorted(repr({k: v for k, v in row.items() if k != "last_used_at"}) for row in rows)
    path = archive_dir / holder.archive_relpath
    found["archive file intact"] = path.is_file() and path.read_bytes() == holder.archive_bytes
    return found


def account_with_token(app: Flask, email: str, password: str) -> str:
    """A third user with nothing but a password and a live API token (its secret)."""
    with get_db(app).session(write=True) as session:
        user = User(email=email, display_name="Third", timezone="UTC", email_confirmed_at=utcnow())
        user.password_hash = _hash_password(password)
        session.add(user)
        session.flush()
        return api_tokens.create_token(session, user.id, "old script", days=30, now=utcnow()).secret


def close_account(app: Flask, email: str) -> None:
    with get_db(app).session(write=True) as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        user.is_active = False


def expired_token(app: Flask, user_id: int) -> str:
    """A token of `user_id` whose expiry has just passed."""
    with get_db(app).session(write=True) as session:
        made = api_tokens.create_token(session, user_id, "expired script", days=1, now=utcnow())
        made.token.expires_at = utcnow() - dt.timedelta(seconds=1)
    return made.secret
