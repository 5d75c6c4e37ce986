"""Fixtures shared by every test: an app on a temporary database, its CLI, sample data.

Real servers (Radicale, moto's S3, aiosmtpd) have their fixtures in
`tests/servers/`, loaded below; PostgreSQL and Redis fixtures are in
`tests/scale/conftest.py`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import settings
from jinja2.bccache import Bucket, BytecodeCache

from account.jsonio import account_from_dict
from account.records import Account, Contact
from app import create_app
from store import Database, get_db, migrate
from web import limiter

pytest_plugins = ["tests.servers.radicale", "tests.servers.smtp", "tests.servers.s3"]

# Hypothesis profiles. "ci" is Hypothesis's own CI profile (the same examples on every run,
# so a red CI is reproducible rather than a lucky draw; no deadline on a busy machine; the
# failing example's blob printed) with every test's full example count: tests scale explicit
# counts through tests/profiles.py. "dev", the default elsewhere, tries a tenth as many, so
# `make test-fast` stays short; its random draws and local example database still find new
# failures over time. CI (set by `.ci/run`) selects "ci"; HYPOTHESIS_PROFILE picks either.
settings.register_profile("ci", settings.get_profile("ci"), max_examples=100)
settings.register_profile("dev", max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

DATA = Path(__file__).parent / "data"
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def lifeboat_log_handlers() -> Iterator[None]:
    """The "lifeboat" logger's handlers and level as the test found them.

    Why: a command run in process (`CliRunner`) configures the logger for the process
    (`logs.configure_for_people`, `logs.configure`), and a handler left behind would write
    its lines into the next test's command output.
    """
    logger = logging.getLogger("lifeboat")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its smallest cost in this process's tests, as Django's test settings do.

    Why: most web and API tests sign someone in, hashing and verifying a password;
    with the production parameters (argon2-cffi's RFC 9106 defaults: 64 MiB, 3 passes,
    4 lanes) each costs ~0.13 s of CPU, most of a signed-in test's setup. The hashes
    are still Argon2id made and checked by `store.passwords`, and a hash made with the
    production parameters still verifies (the parameters travel in the hash).
    Servers started in other processes (`lifeboat serve`, the CLI) keep the real cost.
    """
    from argon2 import PasswordHasher

    from store import passwords

    saved = passwords._hasher, passwords._DUMMY_HASH
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    passwords._hasher, passwords._DUMMY_HASH = cheap, cheap.hash("lifeboat-dummy-password")
    yield
    passwords._hasher, passwords._DUMMY_HASH = saved


# The werkzeug release whose `Rule._compile_builder` `url_builders_compiled_once` was read against.
WERKZEUG_READ = "3.1.9"


@pytest.fixture(autouse=True, scope="session")
def url_builders_compiled_once() -> Iterator[None]:
    """Each route's URL builder compiled once per test process rather than once per app.

    Why: the suite makes an app per test (about 1,500), and for each of an app's ~110
    routes werkzeug compiles two Python functions from a generated syntax tree
    (`Rule._compile_builder`): 21 of the 41 ms `create_app` costs here. What it compiles
    depends only on the rule's text, its parsed trace, its defaults (the values of those
    in the path already converted) and `append_unknown`; the rule's converters are reached
    through `self` when the function runs, and each rule still binds the function to
    itself. So the function compiled for an equal rule of an earlier app is the one it
    would compile again, and `url_for` gives the same URLs. Only on the werkzeug release
    this was read against (the lock pins it); on any other, every app compiles its own.
    """
    from importlib.metadata import version

    from werkzeug.routing.rules import Rule

    if version("werkzeug") != WERKZEUG_READ:
        yield
        return
    compile_builder = Rule._compile_builder
    compiled: dict[tuple[Any, ...], Any] = {}

    def once(rule: Rule, append_unknown: bool = True) -> Any:
        defaults = tuple(
            (name, rule._converters[name].to_url(value) if name in rule._converters else repr(value))
            for name, value in (rule.defaults or {}).items()
        )
        key = (rule.rule, tuple(rule._trace), defaults, append_unknown)
        if key not in compiled:
            compiled[key] = compile_builder(rule, append_unknown)
        return compiled[key]

    Rule._compile_builder = once  # type: ignore[assignment]
    yield
    Rule._compile_builder = compile_builder  # type: ignore[method-assign]


class _TemplateCodeCache(BytecodeCache):
    """Jinja's bytecode cache kept in this process: each template's compiled code, by name and source."""

    def __init__(self) -> None:
        self.codes: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        checksum, code = self.codes.get(bucket.key, ("", None))
        if code is not None and checksum == bucket.checksum:
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self.codes[bucket.key] = (bucket.checksum, bucket.code)


@pytest.fixture(autouse=True, scope="session")
def templates_compiled_once() -> Iterator[None]:
    """Each Jinja template compiled once per test process rather than once per app.

    Why: every app has its own Jinja environment, so each test compiled again every
    template it rendered (parse, generate Python, `compile`): 16 of the 103 s of CPU
    tests/web and tests/api took under cProfile. Jinja's own bytecode cache
    (`Environment.bytecode_cache`, the mechanism behind its `FileSystemBytecodeCache`)
    hands a later environment the code compiled for the same template name and
    source; each environment still runs it into a template of its own and renders
    with its own filters and globals. Every app here comes from `create_app`, so
    their environments compile alike. Servers started in other processes compile
    their own.
    """
    saved = Flask.jinja_options
    Flask.jinja_options = {**saved, "bytecode_cache": _TemplateCodeCache()}
    yield
    Flask.jinja_options = saved


class _SQLiteStatementCache:
    """SQLAlchemy's compiled-statement cache shared by the SQLite engines of one test process.

    SQLAlchemy keys each entry by the dialect object, and every engine has its own, so an
    entry is only found again when the dialect is the same object. This cache finds it for
    any dialect like one seen before: same class, same driver module, same identifier
    quoting and the same settings (SQLite's version, paramstyle, label length and so on,
    every plain value the dialect holds), which is what the compiled SQL depends on.
    Least recently used entries go past `size`, as in SQLAlchemy's own cache.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self.first_alike: dict[tuple[Any, ...], Any] = {}  # a dialect's settings -> the first dialect with them
        self.alike: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()  # each dialect -> that first one

    def _key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        dialect = key[0]
        first = self.alike.get(dialect)
        if first is None:
            plain = (bool, int, float, str, tuple, type(None))
            settings = tuple(sorted((k, v) for k, v in vars(dialect).items() if isinstance(v, plain)))
            alike = (type(dialect), dialect.loaded_dbapi, type(dialect.identifier_preparer), settings)
            first = self.alike[dialect] = self.first_alike.setdefault(alike, dialect)
        return (first, *key[1:])

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        key = self._key(key)
        found = self.entries.get(key, default)
        if found is not default:
            self.entries.move_to_end(key)
        return found

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self.entries[self._key(key)] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


@pytest.fixture(autouse=True, scope="session")
def sql_compiled_once() -> Iterator[None]:
    """Each SQL statement compiled once per test process rather than once per test's engine.

    Why: the suite makes an engine per test (an app on its own SQLite file), and each
    compiled every statement it ran again: 33 of the 344 s of CPU test-fast took under
    cProfile in one process. `Engine.update_execution_options(compiled_cache=...)`,
    SQLAlchemy's own option, points each SQLite engine made through `store.db.make_engine`
    at one shared cache (see `_SQLiteStatementCache`): tests/web/test_support_console.py
    spent 1.35 s in SQLAlchemy's compile step instead of 3.98 s under cProfile (what is
    left: statements new to the process, and flushes, which use the mappers' own caches).
    Statements still run on each test's own engine and connection. PostgreSQL engines
    keep their own cache.
    """
    from store import db as store_db

    make_engine = store_db.make_engine
    cache = _SQLiteStatementCache(size=5_000)

    def shared(url: str, **options: Any) -> Any:
        engine = make_engine(url, **options)
        if engine.dialect.name == "sqlite":
            engine.update_execution_options(compiled_cache=cache)
        return engine

    store_db.make_engine = shared
    yield
    store_db.make_engine = make_engine


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No LIFEBOAT_* setting at all, and an instance folder that does not exist yet."""
    for name in list(os.environ):
        if name.startswith("LIFEBOAT_") or name.startswith("FLASK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    monkeypatch.setenv("LIFEBOAT_INSTANCE_DIR", str(tmp_path / "instance"))
    return {"FLASK_SKIP_DOTENV": "1", "LIFEBOAT_INSTANCE_DIR": str(tmp_path / "instance")}


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def alice_json() -> dict[str, Any]:
    return json.loads((DATA / "alice.json").read_text("utf-8"))


@pytest.fixture
def alice(alice_json: dict[str, Any]) -> Account:
    return account_from_dict(alice_json)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file migrated once; each test gets a copy (migrations cost ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "lifeboat.sqlite3"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database)
    database.dispose()
    return path


def build_app(folder: Path, migrated: Path) -> Flask:
    """An app on a copy of the migrated database in `folder` (keys, archives and all inside it).

    For the `app` fixture and for module-scoped apps (tests/web/test_route_access.py)
    that share one set of users and archives among many read-mostly tests.
    """
    shutil.copyfile(migrated, folder / "lifeboat.sqlite3")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(folder / "instance"),  # generated keys stay out of the checkout
            "DATABASE_URL": f"sqlite:///{folder / 'lifeboat.sqlite3'}",
            "ARCHIVE_DIR": str(folder / "archives"),
            "SECRET_KEY": "test-secret-key",
            "WTF_CSRF_ENABLED": True,
        }
    )
    # Flask-Limiter's one Limiter (web.limiter) keeps its in-memory counters across the apps of
    # this process: start each app with none, so one test's failed sign-ins cannot throttle another.
    limiter.reset()
    return app


@pytest.fixture
def app(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Flask]:
    app = build_app(tmp_path, migrated_sqlite)
    yield app
    get_db(app).dispose()


@pytest.fixture
def db(app: Flask) -> Database:
    return get_db(app)


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def make_account(db: Database) -> Callable[[str], int]:
    """`make_account("bob@example.com")`: one more account (address confirmed, the web tests' password); its id."""

    def make(email: str) -> int:
        from store import User
        from store.base import utcnow
        from store.passwords import hash_password
        from tests.web.conftest import PASSWORD

        with db.session(write=True) as session:
            user = User(email=email, email_confirmed_at=utcnow(), password_hash=hash_password(PASSWORD))
            session.add(user)
            session.flush()
            return user.id

    return make


@pytest.fixture
def archive_dir(app: Flask) -> Path:
    return Path(app.config["ARCHIVE_DIR"])


# A writer in a process of its own: creates a `partial_file` for argv[1], prints its path, holds it until killed.
_HOLD_PARTIAL = """
import sys, time
from pathlib import Path
from store.archive_files import partial_file
with partial_file(Path(sys.argv[1])) as path:
    print(path, flush=True)
    time.sleep(300)
"""


@pytest.fixture
def partial_writer() -> Iterator[Callable[[Path], tuple[subprocess.Popen[str], Path]]]:
    """Start writers of partial files in other processes: `(process, its partial file)` for a final path.

    Each is killed when the test ends, if the test has not killed it (SIGKILL: no clean-up runs).
    """
    started: list[subprocess.Popen[str]] = []
    root = Path(__file__).resolve().parents[1]

    def start(final: Path) -> tuple[subprocess.Popen[str], Path]:
        env = {**os.environ, "PYTHONPATH": str(root)}
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLD_PARTIAL, str(final)], stdout=subprocess.PIPE, text=True, cwd=root, env=env
        )
        started.append(process)
        assert process.stdout is not None
        return process, Path(process.stdout.readline().strip())

    yield start
    for process in started:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


@dataclass(frozen=True)
class UserKey:
    """A key pair made by the standard tool: the public text Lifeboat is given, and how to open what it seals."""

    public: str  # what the user pastes into Lifeboat
    decrypt: list[str]  # the standard tool's command that reads ciphertext on stdin and writes plaintext
    env: dict[str, str]

    def open(self, ciphertext: bytes) -> bytes:
        """Decrypt with the real `age` or `gpg` binary (never with Lifeboat's own code)."""
        done = subprocess.run(self.decrypt, input=ciphertext, capture_output=True, env=self.env, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout


@pytest.fixture
def email_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vCard writer, broken on purpose: contact c-0001's first email goes missing (its drill finds it).

    `monkeypatch.undo()` in the test mends the writer again.
    """
    from exporters.archive import layout

    writer = getattr(layout, "contact_to_vcard")  # noqa: B009  # not re-exported: patched where the bundle calls it

    def wrong(contact: Contact, version: str = "3.0") -> bytes:
        if contact.uid == "c-0001":
            contact = dataclasses.replace(contact, emails=contact.emails[1:])
        return writer(contact, version)

    monkeypatch.setattr(layout, "contact_to_vcard", wrong)


@pytest.fixture
def age_key(tmp_path: Path) -> UserKey:
    """An age identity from Debian's `age-keygen` (`make system-deps` installs it), in a 0600 file."""
    identity = tmp_path / "age-identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
    return UserKey(public.stdout.strip(), ["age", "--decrypt", "-i", str(identity)], dict(os.environ))


@pytest.fixture(scope="session")
def openpgp_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserKey]:
    """An OpenPGP key pair from Debian's `gpg` in its own home folder, with no passphrase.

    One per test process: the tests only read the keyring (encrypt to the public key, decrypt,
    export), and making a key starts a gpg-agent, which is stopped when the session ends.
    """
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--quick-gen-key", "Alice <alice@example.com>", "default", "default", "never"],
        env=env,
        check=True,
        capture_output=True,
    )
    exported = subprocess.run(
        [*gpg, "--armor", "--export", "alice@example.com"], env=env, check=True, capture_output=True, text=True
    )
    yield UserKey(exported.stdout, [*gpg, "--decrypt"], env)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)


OpenPGPKeyMaker = Callable[..., str]


@pytest.fixture
def openpgp_key_expiring() -> Iterator[OpenPGPKeyMaker]:
    """Make an OpenPGP public key (armored) with Debian's `gpg` that expires: `make("10d")`.

    `made` ("20200101T000000") makes it at that time instead of now, so `make("1y", made=...)` expired long
    ago; `encryption="5d"` gives it a signing-only primary key and an encryption subkey of its own expiry.
    """
    homes: list[Path] = []

    def make(expires: str, *, made: str | None = None, encryption: str | None = None) -> str:
        # A short path: gpg-agent's sockets live there, and a socket path has at most 107 bytes
        # (a test's tmp_path under pytest-xdist is longer).
        home = Path(tempfile.mkdtemp(prefix="gpg-"))
        homes.append(home)
        env = {**os.environ, "GNUPGHOME": str(home)}
        gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
        if made is not None:
            gpg += ["--faked-system-time", made]
        usage = "default" if encryption is None else "sign"
        subprocess.run(
            [*gpg, "--quick-gen-key", "Eve <eve@example.com>", "default", usage, expires],
            env=env,
            check=True,
            capture_output=True,
        )
        if encryption is not None:
            listed = subprocess.run(
                ["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True, capture_output=True, text=True
            ).stdout
            fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))
            subprocess.run(
                [*gpg, "--quick-add-key", fingerprint, "cv25519", "encr", encryption],
                env=env,
                check=True,
                capture_output=True,
            )
        exported = subprocess.run(
            ["gpg", "--batch", "--armor", "--export", "eve@example.com"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return exported.stdout

    yield make
    for home in homes:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)}, check=False)
        shutil.rmtree(home, ignore_errors=True)


# Allocations between two collections of the youngest generation (CPython's default: 700).
GC_YOUNG_THRESHOLD = 100_000


def pytest_configure(config: pytest.Config) -> None:
    """A larger youngest generation for the collector, so a test's garbage mostly dies young.

    Why: each test builds an app, an engine and their templates, thousands of objects in
    reference cycles that live exactly as long as the test. With CPython's default
    threshold (700) they outlive two young collections, reach the oldest generation and
    wait for a full collection, which walks every object the process holds (~0.4 s each
    in a worker that has imported the whole service and its tests): 11.7 of the 43 s of
    CPU tests/web took. Collected from the youngest generation instead, the same garbage
    costs a fraction (tests/web/test_security.py, test_support_console.py,
    test_downloads.py, tests/unit/test_runs.py and tests/formats/test_export_reuse.py:
    5.4 s of collection at 700, 1.9 s at 100,000). The same garbage is freed, a little
    later: that process peaked at 242 MB instead of 225 MB.
    """
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep every scale test on one xdist worker (`make test` runs `-n auto --dist loadgroup`).

    Why: one of them restarts PostgreSQL and another terminates backends; run beside other
    PostgreSQL tests on a second worker, those would fail for reasons that are not theirs.
    The rest of the suite shares nothing between processes (temporary directories, ports
    chosen by the OS, a database per test), so it spreads freely.
    """
    for item in items:
        if item.get_closest_marker("scale"):
            item.add_marker(pytest.mark.xdist_group("scale"))
