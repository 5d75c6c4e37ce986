"""Signed, expiring download links for archives (made for emails, opened by the web).

Why itsdangerous with its own salt and a max age: a link in an email may be
forwarded or leaked; it must open exactly one archive, only for a while, and a
token minted for another purpose must not work here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "lifeboat.archive-download.v1"


@dataclass(frozen=True)
class DownloadGrant:
    archive_id: str
    user_id: int


class LinkError(ValueError):
    """The link is invalid or expired; the message is safe to show."""


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, archive_id: str, user_id: int) -> str:
    return _serializer(secret_key).dumps({"a": archive_id, "u": user_id})


def read_token(secret_key: str, token: str, max_age: int) -> DownloadGrant:
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkError("This download link has expired. Sign in to download the archive.") from None
    except BadSignature:
        raise LinkError("This download link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("a"), str) or not isinstance(data.get("u"), int):
        raise LinkError("This download link is not valid.")
    return DownloadGrant(archive_id=data["a"], user_id=data["u"])


def download_url(base_url: str, secret_key: str, archive_id: str, user_id: int) -> str:
    return f"{base_url.rstrip('/')}/d/{make_token(secret_key, archive_id, user_id)}"


def link_maker(app: Flask) -> Callable[[str, int], str]:
    """`download_link(archive_id, user_id)` for `jobs.init_app`, read from `app`'s settings.

    The settings are read at each call, not now, so a base URL set after the
    app was built (tests do) is the one in the link.
    """
    config = app.config
    return lambda archive_id, user_id: download_url(config["BASE_URL"], config["SECRET_KEY"], archive_id, user_id)
