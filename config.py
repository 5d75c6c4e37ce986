"""Every setting, declared once: name, type, default, what it does, and whether it is a secret.

Why a declarative list (the way Radicale's config.py lists its options):
reading, validating, `.env.example` and the table in docs/deployment.md all
come from `SETTINGS`, so a default cannot be written twice or drift between
code and documentation, and consumers read `app.config[NAME]` without a
fallback of their own. Why by hand rather than a settings library: a few dozen
flat values from `LIFEBOAT_*` variables, secrets also from `LIFEBOAT_*_FILE`
(as healthchecks does); the stdlib does it in a page.
Precedence: defaults, then the environment, then the test mapping given to
`create_app`.
"""

from __future__ import annotations

import logging
import os
import secrets
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import LifeboatError

PREFIX = "LIFEBOAT_"
log = logging.getLogger("lifeboat.config")


class ConfigError(LifeboatError, ValueError):
    """A setting has a value the service cannot start with; the message names the setting."""


# A default may depend on the instance folder and on settings declared before it.
Default = Any | Callable[[Path, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Setting:
    """One `LIFEBOAT_<name>` variable; `name` is also its `app.config` key."""

    name: str
    kind: str  # "str", "int", "bool", "list" (comma-separated) or "keys" (commas or whitespace)
    default: Default
    help: str
    secret: bool = False  # may be given as LIFEBOAT_<name>_FILE; never shown
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    shown_default: str | None = None  # the docs' wording when the default is computed
    in_example: bool = True  # False: test-only knobs stay out of .env.example and the docs

    @property
    def variable(self) -> str:
        return PREFIX + self.name


def _in_instance(relative: str, prefix: str = "") -> Callable[[Path, Mapping[str, Any]], str]:
    return lambda instance, _values: f"{prefix}{instance / relative}"


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_DIR", "str", None, "Where the database, keys and archives live (read before the app exists).",
            shown_default="the checkout's instance/, else ~/.local/share/lifeboat"),
    Setting("DATABASE_URL", "str", _in_instance("lifeboat.sqlite3", "sqlite:///"),
            "SQLAlchemy URL. SQLite gets its schema on first use; on PostgreSQL (e.g. "
            "postgresql+psycopg://lifeboat@db/lifeboat) run `lifeboat db upgrade` yourself.",
            secret=True, shown_default="SQLite in the instance folder"),
    Setting("ARCHIVE_DIR", "str", _in_instance("archives"), "Where verified archives are kept (ARCHIVE_STORE=folder); "
            "with ARCHIVE_STORE=s3 only scratch space for exports before upload.",
            shown_default="archives/ in the instance folder"),
    Setting("ARCHIVE_STORE", "str", "folder", "Where archives live: folder (ARCHIVE_DIR, one host) or s3 "
            "(ARCHIVE_BUCKET, which every web, scheduler and worker host must reach).", choices=("folder", "s3")),
    Setting("ARCHIVE_BUCKET", "str", None, "With ARCHIVE_STORE=s3: the name of the operator's bucket for archives."),
    Setting("ARCHIVE_BUCKET_PREFIX", "str", "", "Key prefix inside ARCHIVE_BUCKET, e.g. lifeboat/archives."),
    Setting("ARCHIVE_BUCKET_ENDPOINT_URL", "str", None, "Endpoint of an S3-compatible store "
            "(e.g. https://minio.internal:9000); unset for AWS."),
    Setting("ARCHIVE_BUCKET_REGION", "str", None, "Region of ARCHIVE_BUCKET."),
    Setting("ARCHIVE_BUCKET_ACCESS_KEY_ID", "str", None, "Set together with the secret, or leave both unset to use "
            "the default AWS credential chain."),
    Setting("ARCHIVE_BUCKET_SECRET_ACCESS_KEY", "str", None, "Secret for ARCHIVE_BUCKET_ACCESS_KEY_ID.", secret=True),
    Setting("ARCHIVE_BUCKET_PATH_STYLE", "bool", False, "Path-style bucket addressing (most MinIO and Ceph setups)."),
    Setting("ARCHIVE_BUCKET_DOWNLOADS", "str", "redirect", "redirect: browsers fetch archives from short-lived "
            "presigned URLs (the endpoint must be reachable by users); stream: the web process relays the bytes.",
            choices=("redirect", "stream")),
    Setting("SECRET_KEY", "str", None, "Signs sessions and download links. Unset: generated into the instance "
            "folder on first use (secret_key, mode 0600).", secret=True),
    Setting("ENCRYPTION_KEYS", "keys", [], "Fernet keys for destination credentials, newest first, separated by "
            "commas; older ones still decrypt (rotation). Unset on SQLite: generated into the instance folder "
            "(encryption_keys, mode 0600; back it up). Required on PostgreSQL, the same on every host: the web app, "
            "`serve`, `scheduler` and Celery workers refuse to start without it there. Generate "
            "one with: python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\".",
            secret=True),
    Setting("SIGNING_KEYS", "str", None, "Ed25519 keys that sign each archive's manifest: the active private "
            "key, then retired public keys (still published, so archives they signed still verify). Unset on "
            "SQLite: generated into the instance folder (signing_keys, mode 0600; back it up). On PostgreSQL set "
            "it, the same on every host, or archives are unsigned; `lifeboat signing-key new` makes one and "
            "`lifeboat signing-key rotate` rotates it.", secret=True),
    Setting("VCARD_VERSION", "str", "3.0", "vCard version of exported contacts.", choices=("3.0", "4.0")),
    Setting("ARCHIVE_RETENTION_DAYS", "int", 30, "Archives older than this are deleted; the newest verified "
            "archive per user is always kept.", minimum=1),
    Setting("EMBEDDED_WORKERS", "int", 2, "Export threads in the embedded process.", minimum=0),
    Setting("EMBEDDED_PROCESSES", "bool", False, "true: the embedded deployment exports in EMBEDDED_WORKERS child "
            "processes (one core each; each holds a whole app, ~125 MB RSS) instead of threads sharing one core."),
    Setting("RUN_SCHEDULER", "bool", False, "true: `flask run` also runs the scheduler (`lifeboat serve` always "
            "does)."),
    Setting("TICK_SECONDS", "int", 10, "How often the scheduler looks for due schedules and dead runs.", minimum=1),
    Setting("CELERY_BROKER_URL", "str", None, "e.g. redis://127.0.0.1:6379/0 switches exports to Celery workers.",
            secret=True),
    Setting("CELERY_VISIBILITY_TIMEOUT", "int", 3600, "Redis hands an unacknowledged task out again after this "
            "many seconds; set it above the longest export.", minimum=1),
    Setting("RUN_LEASE_SECONDS", "int", 120, "A run's executor renews its lease every quarter of this; an expired "
            "lease means retry.", minimum=1),
    Setting("RETRY_BASE_SECONDS", "int", 60, "The wait before a failed run's second attempt; it doubles with each "
            "attempt.", minimum=1),
    Setting("RETRY_CAP_SECONDS", "int", 3600, "The longest wait between two attempts of a run.", minimum=1),
    Setting("RETRY_MAX_ATTEMPTS", "int", 5, "Attempts of one run before it is given up as failed.", minimum=1),
    Setting("TEST_EXPORT_DELAY_MS", "int", 0, "Test-only: Celery workers and export processes sleep this long at "
            "every progress step of an export, so tests can kill one mid-export.", in_example=False),
    Setting("SMTP_HOST", "str", None, "Mail server for email delivery and failure notices. Unset: email is off."),
    Setting("SMTP_PORT", "int", 587, "Mail server port.", minimum=1),
    Setting("SMTP_SECURITY", "str", "starttls", "How the connection to the mail server is protected.",
            choices=("starttls", "ssl", "none")),
    Setting("SMTP_USERNAME", "str", None, "Mail server user name."),
    Setting("SMTP_PASSWORD", "str", None, "Mail server password.", secret=True),
    Setting("MAIL_FROM", "str", "lifeboat@example.com", "The sender. The default (a reserved example domain) "
            "passes the sender check; set an address your mail server accepts."),
    Setting("EMAIL_ATTACH_LIMIT_BYTES", "int", 15 * 1024 * 1024, "Larger archives are sent as a download link "
            "instead of an attachment.", minimum=1),
    Setting("DOWNLOAD_LINK_MAX_AGE", "int", 7 * 24 * 3600, "Seconds a signed download link stays valid.",
            minimum=60),
    Setting("BASE_URL", "str", "http://127.0.0.1:5000", "The address users reach Lifeboat at (links in email).",
            shown_default="http://127.0.0.1:5000, or under lifeboat serve the --host and --port it listens on"),
    Setting("ENDPOINT_ALLOW_LIST", "list", [], "Hosts/CIDRs user-supplied S3 endpoints may reach although they "
            "are not public, separated by commas."),
    Setting("AWS_PRINCIPAL_ARN", "str", "arn:aws:iam::<lifeboat-account-id>:root", "The AWS principal Lifeboat's "
            "S3 credentials belong to, named in the bucket policy `lifeboat destination policy` suggests."),
    Setting("SECURE_COOKIES", "bool", lambda _instance, values: values["BASE_URL"].startswith("https:"),
            "Session cookies only over HTTPS.", shown_default="on when LIFEBOAT_BASE_URL is https"),
    Setting("METRICS_TOKEN", "str", None, "Bearer token for /metrics. Unset: only loopback clients may scrape.",
            secret=True),
    Setting("REDIS_URL", "str", None, "Sign-in throttling counters. Unset: the Celery broker if it is Redis, "
            "else memory.", secret=True),
    Setting("LOGIN_ACCOUNT_LIMITS", "str", "5/minute;20/hour", "Failed sign-ins allowed per account "
            "(Flask-Limiter syntax)."),
    Setting("LOGIN_ADDRESS_LIMITS", "str", "50/hour", "Failed sign-ins allowed per client address."),
    Setting("STAFF_IDLE_MINUTES", "int", 15, "Support and admin staff are signed out after this many minutes "
            "without a request (users are not).", minimum=1),
    Setting("STAFF_CODE_LIMITS", "str", "5/minute;20/hour", "Failed second-factor codes allowed per staff "
            "member (Flask-Limiter syntax)."),
    Setting("SIGNUP_ENABLED", "bool", True, "Anyone who can reach Lifeboat may create an account (confirmed by "
            "an emailed link). false: only an operator creates accounts."),
    Setting("CONFIRM_LINK_MAX_AGE", "int", 3 * 24 * 3600, "Seconds a confirmation link stays valid (sign-up, and a new "
            "email destination's address).",
            minimum=60),
    Setting("RESET_LINK_MAX_AGE", "int", 3600, "Seconds a password reset link stays valid (it also works only "
            "once).", minimum=60),
    Setting("ACCOUNT_MAIL_ACCOUNT_LIMITS", "str", "3/hour;10/day", "Sign-up and password reset emails sent to one "
            "address, and confirmation links sent to one mailbox for an email destination, on the page or by the "
            "API (Flask-Limiter syntax), so nobody can flood someone's mailbox."),
    Setting("ACCOUNT_MAIL_ADDRESS_LIMITS", "str", "10/hour", "Sign-up and password reset requests allowed per "
            "client address."),
    Setting("UPGRADE_MAX_ARCHIVE_AGE_HOURS", "int", 24, "`lifeboat db upgrade` refuses while an active user has "
            "no verified archive newer than this.", minimum=1),
    Setting("MAX_REQUEST_BYTES", "int", 2_000_000, "The largest request body the web app accepts; a longer one "
            "gets 413 before it is read (every form and API body is far smaller; there are no uploads).",
            minimum=10_000),
    Setting("LOG_LEVEL", "str", "INFO", "Lowest level of Lifeboat's JSON log lines on stderr (the servers: serve, "
            "scheduler, workers; other commands, through `lifeboat` or `flask --app app`, write their warnings as "
            "plain lines).",
            choices=("DEBUG", "INFO", "WARNING", "ERROR")),
)  # fmt: skip
BY_NAME = {setting.name: setting for setting in SETTINGS}
# Read before the app exists (it decides where the app lives), so not part of `app.config`.
STARTUP = frozenset({"INSTANCE_DIR"})


def _raw(setting: Setting, env: Mapping[str, str]) -> str | None:
    """The variable's text, from LIFEBOAT_<name>_FILE for secrets; None or "" means unset."""
    key = setting.variable
    if key + "_FILE" in env:
        if not setting.secret:
            raise ConfigError(f"{key}_FILE: only secrets are read from files; set {key} itself")
        try:
            return Path(env[key + "_FILE"]).read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_FILE: cannot read {env[key + '_FILE']!r}: {exc.strerror}") from None
    return env.get(key)


def _parse(setting: Setting, value: str) -> Any:
    """`value` as the setting's type, or a ConfigError naming the variable."""
    key = setting.variable
    if setting.kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, not {value!r}") from None
        if setting.minimum is not None and number < setting.minimum:
            raise ConfigError(f"{key} must be at least {setting.minimum}, not {number}")
        return number
    if setting.kind == "bool":
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key} must be true or false, not {value!r}")
    if setting.kind == "list":
        return [item.strip() for item in value.split(",") if item.strip()]
    if setting.kind == "keys":
        return split_keys(value)
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{key} must be one of {', '.join(setting.choices)}, not {value!r}")
    return value


def split_keys(value: str) -> list[str]:
    """Keys separated by commas or whitespace (newlines in a key file), in order."""
    return [part for part in value.replace(",", " ").split() if part]


def load(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting but the start-up ones: its variable if set, else its default; refuses bad values."""
    env = os.environ if env is None else env
    instance = Path(instance_path)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in STARTUP:
            continue
        text = _raw(setting, env)
        if text is None or text == "":
            default = setting.default
            values[setting.name] = default(instance, values) if callable(default) else _copy(default)
        else:
            values[setting.name] = _parse(setting, text)
    return values


# How to make a Fernet key, for the operator (the same words as delivery.secrets.GENERATE_HINT).
GENERATE_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def startup_refusal(values: Mapping[str, Any]) -> str | None:
    """Why a server (web, scheduler, worker) must not start with these settings, in one line; None if it may.

    Why refuse rather than start: without LIFEBOAT_ENCRYPTION_KEYS on a shared
    database (anything but SQLite, where a key is generated into the instance
    folder) no host can store or read delivery credentials, and that surfaced
    only when a user saved a bucket, as a form error full of operator
    instructions. The operator learns it at start, where they can fix it.
    """
    if str(values.get("DATABASE_URL") or "").startswith("sqlite") or values.get("ENCRYPTION_KEYS"):
        return None
    return (
        "LIFEBOAT_ENCRYPTION_KEYS is not set: on a database other than SQLite every host needs the same Fernet "
        f"key(s) to store and read delivery credentials. Generate one with {GENERATE_KEY} and set it on every host."
    )


def is_set(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the operator set `LIFEBOAT_<name>` (or its `_FILE`): a default may then be chosen later, by a command."""
    return _raw(BY_NAME[name], os.environ if env is None else env) not in (None, "")


def _copy(default: Any) -> Any:
    return list(default) if isinstance(default, list) else default


def instance_dir(default: str | Path, env: Mapping[str, str] | None = None) -> Path:
    """The instance folder: LIFEBOAT_INSTANCE_DIR (made absolute), else `default`.

    Why a setting: the console script runs from any folder, and an installed
    copy has no checkout to keep its database, keys and archives in.
    """
    value = _raw(BY_NAME["INSTANCE_DIR"], os.environ if env is None else env)
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
    temporary = _write_private(path, generate())
    try:
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


def replace_instance_secret(path: Path, value: str) -> None:
    """Write `value` into the instance secret at `path` (0600) in place of what it held, atomically.

    Why: a rotated key replaces the file `instance_secret` made; readers see the
    old file or the new one, never half of either.
    """
    temporary = _write_private(path, value)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_private(path: Path, value: str) -> Path:
    """`value` and a newline in a new owner-only (0600) file beside `path`, synced; returns its name."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


# --- The schema's two views for people: .env.example and the table in docs/deployment.md ---

TABLE_START = "<!-- settings table: generated from config.py by `make docs`; do not edit by hand -->"
TABLE_END = "<!-- end of settings table -->"


def _default_text(setting: Setting) -> str:
    """The default as written in .env.example: empty when unset or computed."""
    if setting.shown_default is not None or setting.default is None or callable(setting.default):
        return ""
    if isinstance(setting.default, bool):
        return "true" if setting.default else "false"
    if isinstance(setting.default, list):
        return ",".join(setting.default)
    return str(setting.default)


def _type_text(setting: Setting) -> str:
    if setting.choices:
        return " \\| ".join(f"`{choice}`" for choice in setting.choices)
    return {"str": "text", "int": "whole number", "bool": "true/false", "list": "list", "keys": "keys"}[setting.kind]


def markdown_table() -> str:
    """The settings table for docs/deployment.md, markers included."""
    rows = [TABLE_START, "", "| variable | type | default | what it does |", "|---|---|---|---|"]
    for setting in SETTINGS:
        if not setting.in_example:
            continue
        default = setting.shown_default or (f"`{_default_text(setting)}`" if _default_text(setting) else "unset")
        secret = " Secret: may be given as `…_FILE`." if setting.secret else ""
        rows.append(f"| `{setting.variable}` | {_type_text(setting)} | {default} | {setting.help}{secret} |")
    return "\n".join([*rows, "", TABLE_END])


def env_example() -> str:
    """.env.example: every setting at its default, its help on the lines above."""
    lines = [
        "# Lifeboat settings, generated from config.py by `make docs` (do not edit by hand). All are optional",
        "# on the embedded default (SQLite and archives in the instance folder). Secrets may also be given as",
        "# NAME_FILE=/path/to/file. Comments sit on their own lines so the file also works where inline",
        "# comments are not understood (docker --env-file, systemd EnvironmentFile).",
    ]
    for setting in SETTINGS:
        if not setting.in_example:
            continue
        lines.append("#")
        comment = setting.help + (f" Default: {setting.shown_default}." if setting.shown_default else "")
        if setting.choices:
            comment += f" One of: {', '.join(setting.choices)}."
        if setting.secret:
            comment += f" Secret: or {setting.variable}_FILE."
        lines.extend(_wrap(comment, "# "))
        lines.append(f"{setting.variable}={_default_text(setting)}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, prefix: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=prefix, subsequent_indent=prefix, break_on_hyphens=False)


def write_docs(root: Path | None = None) -> list[Path]:
    """Rewrite .env.example and the table in docs/deployment.md from `SETTINGS` (`make docs`); the changed files."""
    root = root or Path(__file__).resolve().parent
    changed = []
    deployment = root / "docs" / "deployment.md"
    text = deployment.read_text("utf-8")
    start, end = text.index(TABLE_START), text.index(TABLE_END) + len(TABLE_END)
    for path, wanted in (
        (root / ".env.example", env_example()),
        (deployment, text[:start] + markdown_table() + text[end:]),
    ):
        if path.read_text("utf-8") != wanted:
            path.write_text(wanted, "utf-8")
            changed.append(path)
    return changed
