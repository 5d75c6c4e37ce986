"""Settings from environment variables, read by typed helpers that refuse bad values.

Why by hand rather than a settings library: a dozen settings, each with a
default that works on a fresh machine (SQLite and local disk under
`instance/`), and `*_FILE` variants for secrets, as healthchecks does.
Precedence: defaults, then the environment, then the test mapping given to
`create_app`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from errors import LifeboatError

PREFIX = "LIFEBOAT_"
log = logging.getLogger("lifeboat.config")


class ConfigError(LifeboatError, ValueError):
    """A setting has a value the service cannot start with; the message names the setting."""


def _raw(name: str, env: Mapping[str, str]) -> str | None:
    key = PREFIX + name
    if key + "_FILE" in env:
        try:
            return Path(env[key + "_FILE"]).read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_FILE: cannot read {env[key + '_FILE']!r}: {exc.strerror}") from None
    return env.get(key)


def env_str(name: str, default: str | None, env: Mapping[str, str]) -> str | None:
    value = _raw(name, env)
    return default if value is None or value == "" else value


def env_int(name: str, default: int, env: Mapping[str, str], *, minimum: int = 0) -> int:
    value = _raw(name, env)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{PREFIX}{name} must be at least {minimum}, not {number}")
    return number


def env_bool(name: str, default: bool, env: Mapping[str, str]) -> bool:
    value = _raw(name, env)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{PREFIX}{name} must be true or false, not {value!r}")


def env_list(name: str, env: Mapping[str, str]) -> list[str]:
    value = _raw(name, env) or ""
    return [item.strip() for item in value.split(",") if item.strip()]


def split_keys(value: str) -> list[str]:
    """Keys separated by commas or whitespace (newlines in a key file), in order."""
    return [part for part in value.replace(",", " ").split() if part]


def instance_dir(default: str | Path, env: Mapping[str, str] | None = None) -> Path:
    """The instance folder: LIFEBOAT_INSTANCE_DIR (made absolute), else `default`.

    Why a setting: the console script runs from any folder, and an installed
    copy has no checkout to keep its database, keys and archives in.
    """
    env = os.environ if env is None else env
    value = env_str("INSTANCE_DIR", None, env)
    return Path(value).expanduser().resolve() if value else Path(default)


def instance_secret(folder: Path, name: str, generate: Callable[[], str], *, level: int = logging.DEBUG) -> str:
    """Read the secret kept in `folder/name`, creating it with `generate()` on first use.

    Why this shape: the embedded default must need no hand-made secret, yet a
    key has to survive restarts (sessions, signed links, encrypted destination
    secrets) and be shared by every process on the instance folder. The file is
    created readable by its owner only (0600) and atomically: written under a
    temporary name, then hard-linked into place, so two processes starting at
    once agree on the first one's key and nobody ever reads a half-written file.
    The value is never logged; creating the file is, at `level`.
    """
    path = folder / name
    try:
        value = path.read_text("utf-8").strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    else:
        if not value:
            raise ConfigError(f"{path} is empty: restore it from a backup, or delete it to generate a new key")
        return value
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(generate() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process got there first: its key is the one to use
        else:
            # The path only, never the value; a lost key file means lost sessions or secrets.
            log.log(level, "generated %s on first use; back it up with the database", path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text("utf-8").strip()


def load(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """All settings, with defaults for the embedded deployment."""
    env = os.environ if env is None else env
    instance = Path(instance_path)
    return {
        "DATABASE_URL": env_str("DATABASE_URL", f"sqlite:///{instance / 'lifeboat.sqlite3'}", env),
        "ARCHIVE_DIR": env_str("ARCHIVE_DIR", str(instance / "archives"), env),
        # Unset: generated into the instance folder on first use (app.py).
        "SECRET_KEY": env_str("SECRET_KEY", None, env),
        # Fernet keys separated by commas or whitespace, newest first; older ones still decrypt (rotation).
        # Unset on SQLite: generated into the instance folder on first use (app.py).
        "ENCRYPTION_KEYS": split_keys(_raw("ENCRYPTION_KEYS", env) or ""),
        "VCARD_VERSION": env_str("VCARD_VERSION", "3.0", env),
        "ARCHIVE_RETENTION_DAYS": env_int("ARCHIVE_RETENTION_DAYS", 30, env, minimum=1),
        # Embedded: the web process also runs the scheduler and exports in a thread pool.
        "EMBEDDED_WORKERS": env_int("EMBEDDED_WORKERS", 2, env),
        "RUN_SCHEDULER": env_bool("RUN_SCHEDULER", False, env),
        "CELERY_BROKER_URL": env_str("CELERY_BROKER_URL", None, env),
        # Redis hands an unacknowledged task out again after this; above the longest export.
        "CELERY_VISIBILITY_TIMEOUT": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, env, minimum=1),
        # A run's executor renews its lease every quarter of this; an expired lease means retry.
        "RUN_LEASE_SECONDS": env_int("RUN_LEASE_SECONDS", 120, env, minimum=1),
        # The wait before a failed run's second attempt; it doubles with each attempt.
        "RETRY_BASE_SECONDS": env_int("RETRY_BASE_SECONDS", 60, env, minimum=1),
        # Test-only: sleep this long at every progress step of an export in Celery workers, so a
        # test can kill a worker mid-export (tests/scale). 0, the default, changes nothing.
        "TEST_EXPORT_DELAY_MS": env_int("TEST_EXPORT_DELAY_MS", 0, env),
        "SMTP_HOST": env_str("SMTP_HOST", None, env),
        "SMTP_PORT": env_int("SMTP_PORT", 587, env, minimum=1),
        "SMTP_SECURITY": env_str("SMTP_SECURITY", "starttls", env),
        "SMTP_USERNAME": env_str("SMTP_USERNAME", None, env),
        "SMTP_PASSWORD": env_str("SMTP_PASSWORD", None, env),
        # The default passes the sender check (a reserved example domain, RFC 2606), so setting only
        # SMTP_HOST works; real servers usually want an address of their own domain here.
        "MAIL_FROM": env_str("MAIL_FROM", "lifeboat@example.com", env),
        "EMAIL_ATTACH_LIMIT_BYTES": env_int("EMAIL_ATTACH_LIMIT_BYTES", 15 * 1024 * 1024, env, minimum=1),
        "DOWNLOAD_LINK_MAX_AGE": env_int("DOWNLOAD_LINK_MAX_AGE", 7 * 24 * 3600, env, minimum=60),
        "BASE_URL": env_str("BASE_URL", "http://127.0.0.1:5000", env),
        # Hosts/CIDRs user-supplied S3 endpoints may reach although they are not public.
        "ENDPOINT_ALLOW_LIST": env_list("ENDPOINT_ALLOW_LIST", env),
        # Session cookies only over HTTPS; on by default when BASE_URL is https.
        "SECURE_COOKIES": env_bool("SECURE_COOKIES", (env_str("BASE_URL", "", env) or "").startswith("https:"), env),
        # Bearer token for /metrics; without one, only loopback clients may scrape.
        "METRICS_TOKEN": env_str("METRICS_TOKEN", None, env),
        # Sign-in throttling counters (else the Celery broker if Redis, else memory).
        "REDIS_URL": env_str("REDIS_URL", None, env),
        "UPGRADE_MAX_ARCHIVE_AGE_HOURS": env_int("UPGRADE_MAX_ARCHIVE_AGE_HOURS", 24, env, minimum=1),
    }
