"""Choose where archives live from settings: a local folder (default) or the operator's bucket.

Why a function of a plain mapping: `app.py` (or a worker entry point) passes
its config and gets an `ArchiveFiles`, so neither web nor jobs knows which
backend they hold. The settings schema in `config.py` declares, types and
documents these names; this function still refuses an incomplete or
contradictory combination, because a half-configured bucket would otherwise
surface only at the first export.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import ConfigError
from store.archive_bucket import BucketArchiveFiles, BucketSettings

if TYPE_CHECKING:
    from store.archive_files import ArchiveFiles

STORES = ("folder", "s3")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def archive_files_from_config(config: Mapping[str, Any]) -> ArchiveFiles:
    """The archive store `config` asks for.

    `ARCHIVE_STORE` is "folder" (archives under `ARCHIVE_DIR`) or "s3"
    (archives in `ARCHIVE_BUCKET`; `ARCHIVE_DIR` then only holds exports being
    written, before upload).
    """
    store = str(config["ARCHIVE_STORE"]).strip().lower()
    if store not in STORES:
        raise ConfigError(f"ARCHIVE_STORE must be one of {', '.join(STORES)}, not {store!r}")
    archive_dir = Path(str(config["ARCHIVE_DIR"]))
    if store == "folder":
        from store.archive_files import LocalArchiveFiles

        return LocalArchiveFiles(archive_dir)
    return BucketArchiveFiles(bucket_settings_from_config(config, scratch_dir=archive_dir))


def bucket_settings_from_config(config: Mapping[str, Any], *, scratch_dir: Path) -> BucketSettings:
    """`BucketSettings` from the `ARCHIVE_BUCKET*` names, refusing what cannot work."""
    bucket = _text(config, "ARCHIVE_BUCKET")
    if bucket is None:
        raise ConfigError("ARCHIVE_STORE=s3 needs ARCHIVE_BUCKET (the bucket's name)")
    endpoint = _text(config, "ARCHIVE_BUCKET_ENDPOINT_URL")
    if endpoint is not None and not endpoint.startswith(("https://", "http://")):
        raise ConfigError("ARCHIVE_BUCKET_ENDPOINT_URL must start with https:// (or http:// on a private network)")
    key_id = _text(config, "ARCHIVE_BUCKET_ACCESS_KEY_ID")
    secret = _text(config, "ARCHIVE_BUCKET_SECRET_ACCESS_KEY")
    if (key_id is None) != (secret is None):
        raise ConfigError(
            "set both ARCHIVE_BUCKET_ACCESS_KEY_ID and ARCHIVE_BUCKET_SECRET_ACCESS_KEY, "
            "or neither to use the default AWS credential chain"
        )
    return BucketSettings(
        bucket=bucket,
        scratch_dir=scratch_dir,
        prefix=_text(config, "ARCHIVE_BUCKET_PREFIX") or "",
        endpoint_url=endpoint,
        region=_text(config, "ARCHIVE_BUCKET_REGION"),
        access_key_id=key_id,
        secret_access_key=secret,
        path_style=_flag(config, "ARCHIVE_BUCKET_PATH_STYLE", default=False),
        redirect_downloads=_downloads(config),
    )


def _downloads(config: Mapping[str, Any]) -> bool:
    mode = str(config["ARCHIVE_BUCKET_DOWNLOADS"]).strip().lower()
    if mode not in {"redirect", "stream"}:
        raise ConfigError(f"ARCHIVE_BUCKET_DOWNLOADS must be redirect or stream, not {mode!r}")
    return mode == "redirect"


def _text(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _flag(config: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = config.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


__all__ = ["STORES", "archive_files_from_config", "bucket_settings_from_config"]
