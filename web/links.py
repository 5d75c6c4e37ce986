"""Signed download links: a token that names a `download_links` row, and the URLs built on it.

Why itsdangerous with its own salt: a token minted for another purpose (a
password reset, the old archive-and-user links) must not open an archive, and a
changed character must be refused (403) before the database is asked. Why the
token names only a row: the row (`jobs.download_links`) says which archive,
whose, until when, and whether it was revoked, so revoking it stops the link at
once. The signature's own age limit (DOWNLOAD_LINK_MAX_AGE) is a second lock
behind the row's `expires_at`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from jobs import get_context
from jobs.download_links import create_link, link_lifetime
from store import DownloadLink
from store.base import utcnow

SALT = "lifeboat.download-link.v2"
# The next step on a refused link's page: it named none (user trial). A signed-in owner downloads from the list.
NEXT_STEP = "To get the archive, sign in and choose Archives, then Download (or make a new link there)."


class LinkError(ValueError):
    """The token is not one of ours (403) or too old (`expired`: 410); the message is safe to show."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, link_id: str) -> str:
    return _serializer(secret_key).dumps({"l": link_id})


def read_token(secret_key: str, token: str, max_age: int) -> str:
    """The link id a token names; `LinkError` if it was altered, signed elsewhere, or is older than `max_age`."""
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkError(f"This download link has expired. {NEXT_STEP}", expired=True) from None
    except BadSignature:
        raise LinkError(
            f"This download link is not valid (it may have been cut short when copied). {NEXT_STEP}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("l"), str):
        raise LinkError(f"This download link is not valid. {NEXT_STEP}")
    return data["l"]


def link_url(base_url: str, secret_key: str, link_id: str) -> str:
    """The archive's signed URL; `SHA256SUMS`, `parts` and `parts/<name>` sit beneath it."""
    return f"{base_url.rstrip('/')}/d/{make_token(secret_key, link_id)}"


def part_url(link: str, name: str) -> str:
    """The URL of one member beneath a link's URL (each path segment percent-encoded)."""
    return f"{link}/parts/{quote(name, safe='/')}"


@dataclass(frozen=True)
class LinkUrls:
    """A link's three addresses: the archive, its `SHA256SUMS`, its JSON part list."""

    url: str
    checksums: str
    parts: str


def link_urls(config: Mapping[str, Any], link_id: str) -> LinkUrls:
    """The URLs of a link row, signed now with the configured base URL.

    Why signing again is safe: the token names only the row, so each page
    view may mint a fresh one; the row's expiry and revocation still decide.
    The base is LIFEBOAT_BASE_URL, not the request's Host: these addresses go
    into scripts and emails, so they must be the public one.
    """
    url = link_url(config["BASE_URL"], config["SECRET_KEY"], link_id)
    return LinkUrls(url=url, checksums=f"{url}/SHA256SUMS", parts=f"{url}/parts")


def new_link(
    config: Mapping[str, Any], session: Session, archive_id: str, user_id: int, *, days: int | None = None
) -> DownloadLink:
    """Make a link row for the user's archive, valid `days` (default: the longest DOWNLOAD_LINK_MAX_AGE allows).

    `jobs.download_links.LinkRefused` if the archive is not theirs or is gone;
    `errors.InvalidInput` if `days` is over the limit.
    """
    lifetime = link_lifetime(config["DOWNLOAD_LINK_MAX_AGE"], days)
    return create_link(session, archive_id, user_id, max_age=lifetime, now=utcnow())


def new_link_url(config: Mapping[str, Any], session: Session, archive_id: str, user_id: int) -> str:
    """Make a link row for the user's archive (valid DOWNLOAD_LINK_MAX_AGE) and return its signed URL."""
    return link_urls(config, new_link(config, session, archive_id, user_id).id).url


def link_maker(app: Flask) -> Callable[[str, int], str | None]:
    """`download_link(archive_id, user_id)` for `jobs.init_app`: a new link row, its URL (for emails).

    The settings are read at each call, not now, so a base URL set after the
    app was built (tests do) is the one in the link. The row is written in its
    own short transaction.
    """

    def make(archive_id: str, user_id: int) -> str | None:
        with get_context(app).db.session(write=True) as session:
            return new_link_url(app.config, session, archive_id, user_id)

    return make
